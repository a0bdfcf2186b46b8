/* vectord quickstart: a registry, an index, vectors with metadata, a
 * search, and an LHV1 round trip through a file.
 *
 *   cargo build --release
 *   cc -std=c99 -Iinclude examples/quickstart.c target/release/libvectord.a \
 *      -lpthread -ldl -lm -o quickstart && ./quickstart
 * (scripts/demo.sh does exactly this.) */
#include <stdio.h>
#include <stdlib.h>

#include "vectord.h"

/* Prints the error of a failed call, frees it and exits. */
static void check(vectord_status st, vectord_error *err, const char *what) {
    if (st == VECTORD_STATUS_OK) return;
    fprintf(stderr, "%s failed: %s: %s\n", what, vectord_status_name(st), vectord_error_message(err));
    vectord_error_free(err);
    exit(1);
}

static void print_hits(const vectord_hits *hits) {
    size_t i;
    for (i = 0; i < vectord_hits_len(hits); i++) {
        const vectord_hit *h = vectord_hits_get(hits, i);
        printf("  %zu. %-8s distance %.4f  metadata %s\n", i + 1, h->id, h->distance,
               h->metadata ? h->metadata : "(none)");
    }
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "quickstart.lhv1";
    vectord_error *err = NULL;
    vectord_registry *reg = NULL;
    vectord_index *fruit = NULL, *copy = NULL;
    vectord_hits *hits = NULL;
    vectord_bytes *blob = NULL;
    vectord_index_params params = {"fruit", 3, VECTORD_METRIC_COSINE, 0, 0, 0, VECTORD_QUANTIZATION_NONE};
    const char *ids[4] = {"apple", "banana", "cherry", "kiwi"};
    const float vectors[4 * 3] = {
        0.9f, 0.1f, 0.0f, /* apple */
        0.1f, 0.9f, 0.1f, /* banana */
        0.8f, 0.0f, 0.3f, /* cherry */
        0.2f, 0.7f, 0.6f, /* kiwi */
    };
    const char *metadata[4] = {"{\"color\": \"red\"}", "{\"color\": \"yellow\"}", "{\"color\": \"red\"}", NULL};
    const float query[3] = {1.0f, 0.0f, 0.1f};
    unsigned char *buf;
    long size;
    FILE *f;

    printf("vectord %s (ABI %u)\n", vectord_version(), vectord_abi_version());

    /* NULL storage URL: an in-memory registry ("file:///dir" would persist). */
    check(vectord_registry_open(NULL, NULL, &reg, &err), err, "registry_open");
    check(vectord_registry_create(reg, &params, &fruit, &err), err, "registry_create");
    check(vectord_index_add(fruit, 4, ids, vectors, metadata, &err), err, "index_add");
    printf("index \"%s\": %zu items of dim %u\n", vectord_index_name(fruit), vectord_index_len(fruit),
           vectord_index_dim(fruit));

    check(vectord_index_search(fruit, query, 3, &hits, &err), err, "index_search");
    printf("nearest to (1, 0, 0.1):\n");
    print_hits(hits);
    vectord_hits_free(hits);
    hits = NULL;

    /* Encode to a file, read it back, decode into a standalone index. */
    check(vectord_index_encode(fruit, &blob, &err), err, "index_encode");
    f = fopen(path, "wb");
    if (!f || fwrite(vectord_bytes_data(blob), 1, vectord_bytes_len(blob), f) != vectord_bytes_len(blob)) {
        perror(path);
        return 1;
    }
    fclose(f);
    printf("wrote %zu bytes to %s\n", vectord_bytes_len(blob), path);
    vectord_bytes_free(blob);

    f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        return 1;
    }
    buf = (unsigned char *)malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        perror(path);
        return 1;
    }
    fclose(f);
    check(vectord_index_decode(buf, (size_t)size, &copy, &err), err, "index_decode");
    free(buf);
    check(vectord_index_search(copy, query, 3, &hits, &err), err, "search (decoded)");
    printf("decoded \"%s\" (%zu items), same search:\n", vectord_index_name(copy), vectord_index_len(copy));
    print_hits(hits);
    vectord_hits_free(hits);

    /* Errors are objects: the caller owns and frees them. */
    if (vectord_registry_get(reg, "vegetables", &copy, &err) != VECTORD_STATUS_OK) {
        printf("expected error: %s: %s\n", vectord_status_name(vectord_error_code(err)),
               vectord_error_message(err));
        vectord_error_free(err);
        err = NULL;
    }

    vectord_index_free(copy);
    vectord_index_free(fruit);
    vectord_registry_close(reg);
    return 0;
}
