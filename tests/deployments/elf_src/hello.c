/* Plain dynamically linked hello world (needs only libc.so.6). */
#include <stdio.h>

int main(void) {
    puts("hello");
    return 0;
}
