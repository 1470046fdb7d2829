#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("moq-relay %s\n", MOQ_VERSION);
        return 0;
    }
    fprintf(stderr, "moq-relay: not wired yet\n");
    return 1;
}
