/*
 * embed.c — a program that uses Tessera only through the installed header and library
 * (built by tests/test_install.sh with pkg-config's tessera). Usage: embed MODEL_DIR OUT.png
 */
#include <stdio.h>
#include <stdlib.h>

#include <tessera.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: embed MODEL_DIR OUT.png\n");
        return 2;
    }
    tessera_model_files files = {.model_dir = argv[1]};
    tessera *t = NULL;
    tessera_error e;
    if (tessera_open(&t, &files, 1, &e) != TESSERA_OK) {
        fprintf(stderr, "embed: %s\n", e.msg);
        return 1;
    }
    tessera_params p;
    tessera_params_init(&p);
    p.prompt = "a red circle moving to the right";
    p.width = 48, p.height = 64, p.frames = 1, p.steps = 2, p.seed = 42;
    tessera_output *o = NULL;
    int rc = 1;
    if (tessera_generate(t, &p, NULL, NULL, &o, &e) == TESSERA_OK) {
        char *meta = tessera_format_parameters(t, &p, o);
        if (tessera_write(o, argv[2], meta, 16, NULL, 0, &e) == TESSERA_OK) rc = 0;
        free(meta);
        tessera_output_free(o);
    }
    if (rc) fprintf(stderr, "embed: %s\n", e.msg);
    tessera_close(t);
    printf("embed: tessera %s, %s\n", tessera_version(), rc ? "failed" : "wrote the image");
    return rc;
}
