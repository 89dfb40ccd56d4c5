/* Uses arc4random(), added in glibc 2.36: the binary requires GLIBC_2.36. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    printf("%u\n", arc4random());
    return 0;
}
