/* cmd_inspect.c: placeholder, being written. */
#include <stdio.h>
#include "commands.h"

int cmd_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "minnow inspect: not implemented yet\n");
    return 1;
}
