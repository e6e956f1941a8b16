/* cmd_tokenize.c: placeholder, being written. */
#include <stdio.h>
#include "commands.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "minnow tokenize: not implemented yet\n");
    return 1;
}
