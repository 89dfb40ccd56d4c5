/* Links against libfoo.so (-L. -lfoo, rpath $ORIGIN). */
#include <stdio.h>

int foo_answer(void);

int main(void) {
    printf("%d\n", foo_answer());
    return 0;
}
