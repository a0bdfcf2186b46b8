/* The restart acceptance program: one step per process, driven by
 * tests/restart.rs, which kills some of these processes with SIGKILL.
 *
 *   restart create URL        open, create "docs", add items with metadata,
 *                             print "ready", then wait to be killed
 *   restart check URL         open: "docs" is there with the same count and
 *                             params, stored vectors come back first at
 *                             distance 0, metadata unchanged; then delete it
 *   restart empty URL         open: no indexes
 *   restart churn URL N       open, create "big" with N items, then save it
 *                             again and again (printing "saved K" after each)
 *                             until killed
 *   restart load-big URL      open: "big" loads; print its count
 *
 * Exit status 0 on success; on failure a message on stderr and status 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vectord.h"

#define DIM 16
#define COUNT 200

static int fail(const char *what, vectord_error *err) {
    fprintf(stderr, "restart: %s: %s\n", what,
            err ? vectord_error_message(err) : "(no error object)");
    vectord_error_free(err);
    return 1;
}

/* Deterministic vectors, so every process computes the same ones. */
static void vector_of(int i, float *v) {
    uint32_t s = 2654435761u * (uint32_t)(i + 1);
    for (int j = 0; j < DIM; j++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        v[j] = (float)(s % 2000) / 1000.0f - 1.0f;
    }
}

static void id_of(int i, char *buf, size_t n) { snprintf(buf, n, "item-%d", i); }

static void metadata_of(int i, char *buf, size_t n) {
    snprintf(buf, n, "{\"n\":%d,\"tag\":\"caf\\u00e9 %d\",\"list\":[1,2,3]}", i, i * 7);
}

static vectord_registry *open_or_die(const char *url) {
    vectord_registry *r = NULL;
    vectord_error *err = NULL;
    if (vectord_registry_open(url, NULL, &r, &err) != VECTORD_STATUS_OK) {
        fail("open", err);
        exit(1);
    }
    return r;
}

static int step_create(const char *url) {
    vectord_registry *r = open_or_die(url);
    vectord_index_params p = {"docs", DIM, VECTORD_METRIC_L2, 12, 100, 50, VECTORD_QUANTIZATION_NONE};
    vectord_index *idx = NULL;
    vectord_error *err = NULL;
    if (vectord_registry_create(r, &p, &idx, &err) != VECTORD_STATUS_OK) return fail("create", err);
    static char idbuf[COUNT][32], mdbuf[COUNT][96];
    const char *ids[COUNT], *md[COUNT];
    static float vecs[COUNT * DIM];
    for (int i = 0; i < COUNT; i++) {
        id_of(i, idbuf[i], sizeof idbuf[i]);
        metadata_of(i, mdbuf[i], sizeof mdbuf[i]);
        ids[i] = idbuf[i];
        md[i] = (i % 2 == 0) ? mdbuf[i] : NULL;
        vector_of(i, vecs + i * DIM);
    }
    /* Two batches, so the object reflects more than the first save. */
    if (vectord_index_add(idx, COUNT / 2, ids, vecs, md, &err) != VECTORD_STATUS_OK) return fail("add", err);
    if (vectord_index_add(idx, COUNT / 2, ids + COUNT / 2, vecs + (COUNT / 2) * DIM, md + COUNT / 2, &err) !=
        VECTORD_STATUS_OK)
        return fail("add", err);
    printf("ready %zu\n", vectord_index_len(idx));
    fflush(stdout);
    for (;;) pause(); /* killed with SIGKILL: no close, no flush */
}

static int step_check(const char *url) {
    vectord_registry *r = open_or_die(url);
    vectord_index *idx = NULL;
    vectord_error *err = NULL;
    if (vectord_registry_get(r, "docs", &idx, &err) != VECTORD_STATUS_OK) return fail("get docs", err);
    if (vectord_index_len(idx) != COUNT) {
        fprintf(stderr, "restart: count %zu, expected %d\n", vectord_index_len(idx), COUNT);
        return 1;
    }
    if (vectord_index_dim(idx) != DIM || strcmp(vectord_index_name(idx), "docs") != 0) {
        fprintf(stderr, "restart: params changed\n");
        return 1;
    }
    int exact = 0;
    for (int i = 0; i < COUNT; i++) {
        float v[DIM];
        char want[32], mdwant[96];
        vector_of(i, v);
        id_of(i, want, sizeof want);
        metadata_of(i, mdwant, sizeof mdwant);
        vectord_hits *hits = NULL;
        if (vectord_index_search(idx, v, 1, &hits, &err) != VECTORD_STATUS_OK) return fail("search", err);
        const vectord_hit *h = vectord_hits_get(hits, 0);
        if (h && strcmp(h->id, want) == 0 && h->distance == 0.0f) exact++;
        char *md = NULL;
        if (vectord_index_get(idx, want, NULL, &md, &err) != VECTORD_STATUS_OK) return fail("get item", err);
        int md_ok = (i % 2 == 0) ? (md && strcmp(md, mdwant) == 0) : (md == NULL);
        if (!md_ok) {
            fprintf(stderr, "restart: metadata of %s is %s\n", want, md ? md : "NULL");
            return 1;
        }
        vectord_string_free(md);
        vectord_hits_free(hits);
    }
    printf("count %d, exact first hits %d/%d, metadata unchanged\n", COUNT, exact, COUNT);
    if (exact != COUNT) return 1;
    if (vectord_registry_delete(r, "docs", &err) != VECTORD_STATUS_OK) return fail("delete", err);
    printf("deleted\n");
    vectord_index_free(idx);
    vectord_registry_close(r);
    return 0;
}

static int step_empty(const char *url) {
    vectord_registry *r = open_or_die(url);
    vectord_strings *names = NULL;
    vectord_error *err = NULL;
    if (vectord_registry_names(r, &names, &err) != VECTORD_STATUS_OK) return fail("names", err);
    size_t n = vectord_strings_len(names);
    printf("indexes %zu\n", n);
    vectord_strings_free(names);
    vectord_registry_close(r);
    return n == 0 ? 0 : 1;
}

static int step_churn(const char *url, int n) {
    vectord_registry *r = open_or_die(url);
    vectord_index_params p = {"big", 64, VECTORD_METRIC_L2, 8, 40, 0, VECTORD_QUANTIZATION_NONE};
    vectord_index *idx = NULL;
    vectord_error *err = NULL;
    vectord_status st = vectord_registry_get(r, "big", &idx, &err);
    if (st == VECTORD_STATUS_NOT_FOUND) {
        vectord_error_free(err);
        err = NULL;
        if (vectord_registry_create(r, &p, &idx, &err) != VECTORD_STATUS_OK) return fail("create big", err);
    } else if (st != VECTORD_STATUS_OK) {
        return fail("get big", err);
    }
    float *vecs = malloc(sizeof(float) * 64 * 1000);
    char (*idbuf)[32] = malloc(32 * 1000);
    const char **ids = malloc(sizeof(char *) * 1000);
    if (!vecs || !idbuf || !ids) return 1;
    for (int round = 0;; round++) {
        size_t have = vectord_index_len(idx);
        if (have < (size_t)n) {
            for (int i = 0; i < 1000; i++) {
                snprintf(idbuf[i], 32, "b-%zu", have + (size_t)i);
                ids[i] = idbuf[i];
                for (int j = 0; j < 64; j++) vecs[i * 64 + j] = (float)((have + (size_t)i) * 31 + (size_t)j * 7 % 97) / 97.0f;
            }
            /* Saves inside the call (save=sync). */
            if (vectord_index_add(idx, 1000, ids, vecs, NULL, &err) != VECTORD_STATUS_OK) return fail("add big", err);
        } else {
            /* Change one item so the next save has something to write. */
            snprintf(idbuf[0], 32, "b-0");
            ids[0] = idbuf[0];
            for (int j = 0; j < 64; j++) vecs[j] = (float)(round % 100) / 100.0f + (float)j;
            if (vectord_index_add(idx, 1, ids, vecs, NULL, &err) != VECTORD_STATUS_OK) return fail("upsert big", err);
        }
        printf("saved %zu\n", vectord_index_len(idx));
        fflush(stdout);
    }
}

static int step_load_big(const char *url) {
    vectord_registry *r = open_or_die(url);
    vectord_index *idx = NULL;
    vectord_error *err = NULL;
    if (vectord_registry_get(r, "big", &idx, &err) != VECTORD_STATUS_OK) return fail("get big", err);
    printf("big %zu\n", vectord_index_len(idx));
    vectord_index_free(idx);
    vectord_registry_close(r);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: restart create|check|empty|churn|load-big URL [N]\n");
        return 2;
    }
    const char *step = argv[1], *url = argv[2];
    if (strcmp(step, "create") == 0) return step_create(url);
    if (strcmp(step, "check") == 0) return step_check(url);
    if (strcmp(step, "empty") == 0) return step_empty(url);
    if (strcmp(step, "churn") == 0) return step_churn(url, argc > 3 ? atoi(argv[3]) : 20000);
    if (strcmp(step, "load-big") == 0) return step_load_big(url);
    fprintf(stderr, "restart: unknown step %s\n", step);
    return 2;
}
