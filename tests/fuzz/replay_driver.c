/*
 * Replay driver for fuzz targets: runs LLVMFuzzerTestOneInput over every file of a seed
 * corpus directory, then over deterministic mutations of those seeds (bit flips,
 * truncations, byte insertions), so ctest exercises each parser on every build without
 * libFuzzer. Usage: fuzz_<name>_replay CORPUS_DIR [ITERATIONS]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 512
#define MAX_SEED_SIZE (1 << 20)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t load_seeds(const char *dir, uint8_t **seeds, size_t *sizes)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_SEEDS) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        uint8_t *buf = malloc(MAX_SEED_SIZE);
        size_t len = buf ? fread(buf, 1, MAX_SEED_SIZE, f) : 0;
        fclose(f);
        if (!buf) continue;
        seeds[n] = buf;
        sizes[n] = len;
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    static uint8_t *seeds[MAX_SEEDS];
    static size_t sizes[MAX_SEEDS];
    size_t n = argc > 1 ? load_seeds(argv[1], seeds, sizes) : 0;
    long iterations = argc > 2 ? atol(argv[2]) : 20000;

    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
    for (size_t i = 0; i < n; i++) LLVMFuzzerTestOneInput(seeds[i], sizes[i]);

    uint8_t *scratch = malloc(MAX_SEED_SIZE + 64);
    if (!scratch) return 1;
    for (long it = 0; it < iterations; it++) {
        size_t len;
        if (n == 0 || rng() % 8 == 0) {
            len = rng() % 64;
            for (size_t j = 0; j < len; j++) scratch[j] = (uint8_t)rng();
        } else {
            size_t k = rng() % n;
            len = sizes[k];
            memcpy(scratch, seeds[k], len);
            int edits = 1 + (int)(rng() % 4);
            for (int e = 0; e < edits; e++) {
                switch (rng() % 4) {
                case 0:
                    if (len) scratch[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
                    break;
                case 1:
                    if (len) len = rng() % len;
                    break;
                case 2:
                    if (len < MAX_SEED_SIZE + 32) {
                        size_t pos = len ? rng() % len : 0;
                        memmove(scratch + pos + 1, scratch + pos, len - pos);
                        scratch[pos] = (uint8_t)rng();
                        len++;
                    }
                    break;
                default:
                    if (len) scratch[rng() % len] = (uint8_t)rng();
                    break;
                }
            }
        }
        /* Copy to an exact-size allocation so ASan catches any over-read. */
        uint8_t *input = malloc(len ? len : 1);
        if (!input) break;
        memcpy(input, scratch, len);
        LLVMFuzzerTestOneInput(input, len);
        free(input);
    }
    free(scratch);
    for (size_t i = 0; i < n; i++) free(seeds[i]);
    printf("replayed %zu seeds and %ld mutations\n", n, iterations);
    return 0;
}
