/* A tiny shared library of our own: built as libfoo.so. */
int foo_answer(void) {
    return 42;
}
