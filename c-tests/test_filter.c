/* Filters as data: vectord_filter_new/free, search_filtered, the batch form,
 * count; every bad argument and bad filter; 8 threads sharing one filter. */
#include <pthread.h>

#include "harness.h"

#define DIM 8
#define N 300

static float vecs[N * DIM];

static vectord_index *make_index(void) {
    static char idbuf[N][16];
    static char mdbuf[N][96];
    const char *ids[N];
    const char *md[N];
    vectord_index_params p;
    vectord_index *idx = NULL;
    size_t i;
    memset(&p, 0, sizeof p);
    p.name = "filtered";
    p.dim = DIM;
    p.metric = VECTORD_METRIC_L2;
    CHECK_OK(vectord_index_new(&p, &idx, ERR));
    harness_fill(vecs, N * DIM, 42);
    for (i = 0; i < N; i++) {
        snprintf(idbuf[i], sizeof idbuf[i], "id%u", (unsigned)i);
        snprintf(mdbuf[i], sizeof mdbuf[i], "{\"g\": %u, \"even\": %s, \"t\": {\"n\": %u.5}}",
                 (unsigned)(i % 4), i % 2 == 0 ? "true" : "false", (unsigned)i);
        ids[i] = idbuf[i];
        /* Every tenth item has no metadata at all. */
        md[i] = i % 10 == 9 ? NULL : mdbuf[i];
    }
    CHECK_OK(vectord_index_add(idx, N, ids, vecs, md, ERR));
    return idx;
}

static int id_num(const char *id) { return atoi(id + 2); }

static void test_search_and_count(vectord_index *idx) {
    vectord_filter *f = NULL;
    vectord_hits *hits = NULL;
    vectord_hits *batch[3] = {NULL, NULL, NULL};
    size_t n = 0, i, q;
    float prev = -1.0f;
    int all_match = 1;

    CHECK_OK(vectord_filter_new("{\"g\": 1, \"t.n\": {\"$lt\": 100}}", &f, ERR));
    CHECK_OK(vectord_index_count(idx, f, &n, ERR));
    /* i % 4 == 1, i < 100, i % 10 != 9: 1,5,13,17,21,25,33,...: 25 minus those ending in 9. */
    {
        size_t want = 0;
        for (i = 0; i < 100; i++) want += i % 4 == 1 && i % 10 != 9;
        CHECK(n == want);
    }
    CHECK_OK(vectord_index_search_filtered(idx, vecs, 10, 0, f, &hits, ERR));
    CHECK(vectord_hits_len(hits) == 10);
    for (i = 0; i < vectord_hits_len(hits); i++) {
        const vectord_hit *h = vectord_hits_get(hits, i);
        int k = id_num(h->id);
        all_match &= k % 4 == 1 && k < 100 && k % 10 != 9;
        all_match &= h->distance >= prev;
        prev = h->distance;
    }
    CHECK(all_match);
    vectord_hits_free(hits);
    hits = NULL;

    /* k larger than the matches: all of them. */
    CHECK_OK(vectord_index_search_filtered(idx, vecs, 1000, 16, f, &hits, ERR));
    CHECK(vectord_hits_len(hits) == n);
    vectord_hits_free(hits);
    hits = NULL;

    /* NULL filter: the plain search and the plain count. */
    CHECK_OK(vectord_index_search_filtered(idx, vecs + DIM, 1, 0, NULL, &hits, ERR));
    CHECK(vectord_hits_len(hits) == 1 && strcmp(vectord_hits_get(hits, 0)->id, "id1") == 0);
    vectord_hits_free(hits);
    hits = NULL;
    CHECK_OK(vectord_index_count(idx, NULL, &n, ERR));
    CHECK(n == N);

    /* Batch: one list per query, each only matches. */
    CHECK_OK(vectord_index_search_batch_filtered(idx, 3, vecs, 5, 0, f, batch, ERR));
    for (q = 0; q < 3; q++) {
        CHECK(vectord_hits_len(batch[q]) == 5);
        for (i = 0; i < vectord_hits_len(batch[q]); i++)
            all_match &= id_num(vectord_hits_get(batch[q], i)->id) % 4 == 1;
        vectord_hits_free(batch[q]);
    }
    CHECK(all_match);
    CHECK_OK(vectord_index_search_batch_filtered(idx, 0, NULL, 5, 0, f, NULL, ERR));
    vectord_filter_free(f);

    /* Items without metadata have no fields: $exists false finds exactly them. */
    CHECK_OK(vectord_filter_new("{\"g\": {\"$exists\": false}}", &f, ERR));
    CHECK_OK(vectord_index_count(idx, f, &n, ERR));
    CHECK(n == N / 10);
    vectord_filter_free(f);

    /* Changes are seen by the next search. */
    {
        const char *rm[1] = {"id1"};
        CHECK_OK(vectord_filter_new("{\"$id\": {\"$in\": [\"id1\", \"id2\"]}}", &f, ERR));
        CHECK_OK(vectord_index_count(idx, f, &n, ERR));
        CHECK(n == 2);
        CHECK_OK(vectord_index_remove(idx, 1, rm, ERR));
        CHECK_OK(vectord_index_count(idx, f, &n, ERR));
        CHECK(n == 1);
        vectord_filter_free(f);
    }
}

static void test_errors(vectord_index *idx) {
    vectord_filter *f = NULL;
    vectord_hits *hits = NULL;
    vectord_hits *batch[2] = {NULL, NULL};
    size_t n = 7;

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "$and[1].price: $gt needs a number",
                vectord_filter_new("{\"$and\": [{}, {\"price\": {\"$gt\": \"x\"}}]}", &f, ERR));
    CHECK(f == NULL);
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "invalid JSON", vectord_filter_new("{", &f, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "$bad: unknown operator",
                vectord_filter_new("{\"$bad\": 1}", &f, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "filter_json is NULL",
                vectord_filter_new(NULL, &f, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "not valid UTF-8",
                vectord_filter_new("{\"a\": \"\xff\"}", &f, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out is NULL", vectord_filter_new("{}", NULL, ERR));
    CHECK(f == NULL);
    /* A NULL err is allowed. */
    CHECK(vectord_filter_new("[]", &f, NULL) == VECTORD_STATUS_INVALID_ARGUMENT);
    vectord_filter_free(NULL);

    CHECK_OK(vectord_filter_new("{}", &f, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx is NULL",
                vectord_index_search_filtered(NULL, vecs, 1, 0, f, &hits, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "query is NULL",
                vectord_index_search_filtered(idx, NULL, 1, 0, f, &hits, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "k is 0",
                vectord_index_search_filtered(idx, vecs, 0, 0, f, &hits, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out is NULL",
                vectord_index_search_filtered(idx, vecs, 1, 0, f, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ef 70000",
                vectord_index_search_filtered(idx, vecs, 1, 70000, f, &hits, ERR));
    CHECK(hits == NULL);
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx is NULL",
                vectord_index_search_batch_filtered(NULL, 2, vecs, 1, 0, f, batch, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "queries is NULL",
                vectord_index_search_batch_filtered(idx, 2, NULL, 1, 0, f, batch, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "k is 0",
                vectord_index_search_batch_filtered(idx, 2, vecs, 0, 0, f, batch, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out is NULL",
                vectord_index_search_batch_filtered(idx, 2, vecs, 1, 0, f, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "overflows",
                vectord_index_search_batch_filtered(idx, (size_t)-1 / 2, vecs, 1, 0, f, batch,
                                                    ERR));
    CHECK(batch[0] == NULL && batch[1] == NULL);
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx is NULL", vectord_index_count(NULL, f, &n, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out is NULL", vectord_index_count(idx, f, NULL, ERR));
    CHECK(n == 7);
    {
        float bad[DIM];
        memcpy(bad, vecs, sizeof bad);
        bad[3] = 1.0f / 0.0f;
        CHECK_FAILS(VECTORD_STATUS_INVALID_VECTOR, "component 3",
                    vectord_index_search_filtered(idx, bad, 1, 0, f, &hits, ERR));
    }
    vectord_filter_free(f);
}

struct worker {
    vectord_index *idx;
    const vectord_filter *f;
    int ok;
};

static void *work(void *arg) {
    struct worker *w = arg;
    int round;
    w->ok = 1;
    for (round = 0; round < 30; round++) {
        vectord_hits *hits = NULL;
        size_t i, n = 0;
        if (vectord_index_search_filtered(w->idx, vecs + (round % N) * DIM, 5, 0, w->f, &hits,
                                          NULL) != VECTORD_STATUS_OK) {
            w->ok = 0;
            continue;
        }
        for (i = 0; i < vectord_hits_len(hits); i++)
            w->ok &= id_num(vectord_hits_get(hits, i)->id) % 2 == 0;
        w->ok &= vectord_hits_len(hits) == 5;
        vectord_hits_free(hits);
        w->ok &= vectord_index_count(w->idx, w->f, &n, NULL) == VECTORD_STATUS_OK && n > 100;
    }
    return NULL;
}

static void test_threads(vectord_index *idx) {
    vectord_filter *f = NULL;
    pthread_t th[8];
    struct worker w[8];
    int i;
    CHECK_OK(vectord_filter_new("{\"even\": true}", &f, ERR));
    for (i = 0; i < 8; i++) {
        w[i].idx = idx;
        w[i].f = f;
        CHECK(pthread_create(&th[i], NULL, work, &w[i]) == 0);
    }
    for (i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].ok);
    }
    vectord_filter_free(f);
}

int main(void) {
    vectord_index *idx = make_index();
    test_search_and_count(idx);
    test_errors(idx);
    test_threads(idx);
    vectord_index_free(idx);
    return harness_finish("test_filter");
}
