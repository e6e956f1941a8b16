/* cmd_convert.c: placeholder, being written. */
#include <stdio.h>
#include "commands.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "minnow convert: not implemented yet\n");
    return 1;
}
