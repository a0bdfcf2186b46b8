/* vectord demo: a registry that survives a restart.
 *
 *   demo build STORE DATA   opens a registry on the directory STORE, creates
 *                           the index from DATA, searches it, and exits
 *   demo query STORE DATA   a new process: reopens STORE (the index is loaded
 *                           from its LHV1 object, not rebuilt) and asks the
 *                           same queries
 *
 * DATA is a directory in the layout of ../shared/datasets/wordnet-minilm-30k
 * (base.fvecs, texts_base.txt, query.fvecs, texts_query.txt), or "generated"
 * for a small synthetic set made here. Each item's text is kept as its
 * metadata, so the hits are shown as text by both processes.
 * scripts/demo.sh runs both and compares their answers. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, getpid */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vectord.h"

#define QUERIES 3
#define K 5

typedef struct {
    const char *index;  /* index name */
    size_t n, dim, nq;
    float *base, *queries;
    char **texts, **query_texts;
} dataset;

static void die(const char *what) {
    fprintf(stderr, "demo: %s\n", what);
    exit(1);
}

static void check(vectord_status st, vectord_error *err, const char *what) {
    if (st == VECTORD_STATUS_OK) return;
    fprintf(stderr, "demo: %s failed: %s: %s\n", what, vectord_status_name(st), vectord_error_message(err));
    vectord_error_free(err);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static char *join(const char *dir, const char *file) {
    char *p = xmalloc(strlen(dir) + strlen(file) + 2);
    sprintf(p, "%s/%s", dir, file);
    return p;
}

/* Reads a TEXMEX .fvecs file: rows of (int32 d, d x float32). */
static float *read_fvecs(const char *path, size_t *rows, size_t *dim) {
    FILE *f = fopen(path, "rb");
    int32_t d;
    long size;
    size_t r, n;
    float *out;
    if (!f) die(path);
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 65536) die("bad .fvecs header");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size <= 0 || size % (4 * ((long)d + 1)) != 0) die("bad .fvecs size");
    n = (size_t)size / (4 * ((size_t)d + 1));
    out = xmalloc(n * (size_t)d * sizeof(float));
    for (r = 0; r < n; r++) {
        int32_t rd;
        if (fread(&rd, 4, 1, f) != 1 || rd != d) die("bad .fvecs row");
        if (fread(out + r * (size_t)d, sizeof(float), (size_t)d, f) != (size_t)d) die("short .fvecs row");
    }
    fclose(f);
    *rows = n;
    *dim = (size_t)d;
    return out;
}

/* Reads n lines of text (without their newline). */
static char **read_lines(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    char **lines = xmalloc(n * sizeof(char *));
    char buf[8192];
    size_t i;
    if (!f) die(path);
    for (i = 0; i < n; i++) {
        size_t len;
        if (!fgets(buf, sizeof buf, f)) die("fewer text lines than vectors");
        len = strcspn(buf, "\r\n");
        buf[len] = 0;
        lines[i] = xmalloc(len + 1);
        memcpy(lines[i], buf, len + 1);
    }
    fclose(f);
    return lines;
}

static uint64_t rng_state = 42;
static float rnd(void) { /* xorshift64*, uniform in [-1, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ULL) >> 40) / (float)(1 << 23) - 1.0f;
}

/* 2,000 points in 20 named clusters of dimension 32; the queries are three
 * cluster centres, so the hits should come from the matching cluster. */
static void generate(dataset *ds) {
    static const char *names[20] = {"apple",  "river",  "violin", "granite", "sparrow", "comet", "tulip",
                                    "copper", "glacier", "tiger", "harbor", "saffron", "oak",   "falcon",
                                    "meadow", "quartz", "lantern", "cedar", "dolphin", "ember"};
    float centres[20][32];
    size_t c, i, j;
    ds->index = "generated";
    ds->n = 2000;
    ds->dim = 32;
    ds->nq = QUERIES;
    for (c = 0; c < 20; c++)
        for (j = 0; j < 32; j++) centres[c][j] = rnd();
    ds->base = xmalloc(ds->n * ds->dim * sizeof(float));
    ds->texts = xmalloc(ds->n * sizeof(char *));
    for (i = 0; i < ds->n; i++) {
        c = i % 20;
        for (j = 0; j < 32; j++) ds->base[i * 32 + j] = centres[c][j] + 0.25f * rnd();
        ds->texts[i] = xmalloc(48);
        sprintf(ds->texts[i], "%s #%zu", names[c], i / 20);
    }
    ds->queries = xmalloc(QUERIES * 32 * sizeof(float));
    ds->query_texts = xmalloc(QUERIES * sizeof(char *));
    for (i = 0; i < QUERIES; i++) {
        c = (i * 7) % 20;
        memcpy(ds->queries + i * 32, centres[c], sizeof centres[c]);
        ds->query_texts[i] = xmalloc(48);
        sprintf(ds->query_texts[i], "the centre of the %s cluster", names[c]);
    }
}

static void load(dataset *ds, const char *data, int need_base) {
    size_t qdim, nq;
    char *p;
    if (strcmp(data, "generated") == 0) {
        generate(ds);
        return;
    }
    ds->index = "wordnet";
    if (need_base) {
        p = join(data, "base.fvecs");
        ds->base = read_fvecs(p, &ds->n, &ds->dim);
        free(p);
        p = join(data, "texts_base.txt");
        ds->texts = read_lines(p, ds->n);
        free(p);
    }
    p = join(data, "query.fvecs");
    ds->queries = read_fvecs(p, &nq, &qdim);
    free(p);
    if (need_base && qdim != ds->dim) die("query and base dimensions differ");
    ds->dim = qdim;
    ds->nq = nq < QUERIES ? nq : QUERIES;
    p = join(data, "texts_query.txt");
    ds->query_texts = read_lines(p, ds->nq);
    free(p);
}

/* {"text": "..."} with the text escaped as a JSON string. */
static char *text_json(const char *text) {
    size_t i, o = 0, len = strlen(text);
    char *out = xmalloc(len * 6 + 16);
    o += (size_t)sprintf(out, "{\"text\":\"");
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    sprintf(out + o, "\"}");
    return out;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Prints the hits of every query with the text kept in their metadata
 * (demo.sh compares these lines between the two processes). */
static void ask(vectord_index *idx, const dataset *ds) {
    size_t q, i;
    for (q = 0; q < ds->nq; q++) {
        vectord_error *err = NULL;
        vectord_hits *hits = NULL;
        check(vectord_index_search(idx, ds->queries + q * ds->dim, K, &hits, &err), err, "search");
        printf("query %zu: \"%s\"\n", q + 1, ds->query_texts[q]);
        for (i = 0; i < vectord_hits_len(hits); i++) {
            const vectord_hit *h = vectord_hits_get(hits, i);
            printf("  %zu. id %-6s distance %.4f  %s\n", i + 1, h->id, h->distance,
                   h->metadata ? h->metadata : "(no metadata)");
        }
        vectord_hits_free(hits);
    }
}

int main(int argc, char **argv) {
    dataset ds;
    vectord_error *err = NULL;
    vectord_registry *reg = NULL;
    vectord_index *idx = NULL;
    int build;
    double t0;
    if (argc != 4 || (strcmp(argv[1], "build") != 0 && strcmp(argv[1], "query") != 0)) {
        fprintf(stderr, "usage: demo build|query STORE_DIR DATA_DIR|generated\n");
        return 2;
    }
    build = strcmp(argv[1], "build") == 0;
    memset(&ds, 0, sizeof ds);
    load(&ds, argv[3], build);

    t0 = now();
    check(vectord_registry_open(argv[2], NULL, &reg, &err), err, "vectord_registry_open");
    if (build) {
        vectord_index_params params = {ds.index, (uint32_t)ds.dim, VECTORD_METRIC_COSINE, 0, 0, 0, VECTORD_QUANTIZATION_NONE};
        char **ids = xmalloc(ds.n * sizeof(char *));
        char **metadata = xmalloc(ds.n * sizeof(char *));
        size_t i;
        for (i = 0; i < ds.n; i++) {
            ids[i] = xmalloc(24);
            sprintf(ids[i], "%zu", i);
            metadata[i] = text_json(ds.texts[i]);
        }
        check(vectord_registry_create(reg, &params, &idx, &err), err, "vectord_registry_create");
        printf("process %ld: created index \"%s\" in %s; adding %zu vectors of dimension %zu...\n",
               (long)getpid(), ds.index, argv[2], ds.n, ds.dim);
        t0 = now();
        /* One batch: validated whole, inserted, then saved as one LHV1 object. */
        check(vectord_index_add(idx, ds.n, (const char *const *)ids, ds.base,
                                (const char *const *)metadata, &err),
              err, "vectord_index_add");
        printf("added and saved in %.1f s\n", now() - t0);
        for (i = 0; i < ds.n; i++) {
            free(ids[i]);
            free(metadata[i]);
        }
        free(ids);
        free(metadata);
    } else {
        check(vectord_registry_get(reg, ds.index, &idx, &err), err, "vectord_registry_get");
        printf("process %ld: reopened %s in %.2f s; index \"%s\" is back with %zu items (nothing rebuilt)\n",
               (long)getpid(), argv[2], now() - t0, ds.index, vectord_index_len(idx));
    }
    ask(idx, &ds);
    vectord_index_free(idx);
    vectord_registry_close(reg);
    return 0;
}
