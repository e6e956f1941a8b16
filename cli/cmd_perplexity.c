/* cmd_perplexity.c: placeholder, being written. */
#include <stdio.h>
#include "commands.h"

int cmd_perplexity(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "minnow perplexity: not implemented yet\n");
    return 1;
}
