/* Index-level API: metadata functions, add/upsert/remove, search, batch
 * search, get, ef, encode/decode, refs, hits/bytes accessors. */
#include "harness.h"

#define DIM 8
#define N 200

static vectord_index *make_index(const char *name, uint32_t metric) {
    vectord_index_params p;
    vectord_index *idx = NULL;
    memset(&p, 0, sizeof p);
    p.name = name;
    p.dim = DIM;
    p.metric = metric;
    CHECK_OK(vectord_index_new(&p, &idx, ERR));
    return idx;
}

static void fill_ids(char ids[][16], const char **ptrs, size_t n, const char *prefix) {
    size_t i;
    for (i = 0; i < n; i++) {
        snprintf(ids[i], 16, "%s%u", prefix, (unsigned)i);
        ptrs[i] = ids[i];
    }
}

static void test_version(void) {
    char expect[64];
    const char *v = vectord_version();
    snprintf(expect, sizeof expect, "%d.%d.%d", VECTORD_VERSION_MAJOR, VECTORD_VERSION_MINOR,
             VECTORD_VERSION_PATCH);
    CHECK(v != NULL && strcmp(v, expect) == 0);
    CHECK(vectord_abi_version() == VECTORD_ABI_VERSION);
    CHECK(strcmp(vectord_status_name(VECTORD_STATUS_OK), "VECTORD_STATUS_OK") == 0);
    CHECK(strcmp(vectord_status_name(VECTORD_STATUS_NOT_FOUND), "VECTORD_STATUS_NOT_FOUND") == 0);
    CHECK(strcmp(vectord_status_name(VECTORD_STATUS_INTERNAL), "VECTORD_STATUS_INTERNAL") == 0);
    CHECK(strcmp(vectord_status_name((vectord_status)77), "VECTORD_STATUS_UNKNOWN") == 0);
    CHECK(VECTORD_STATUS_STORAGE == 8 && VECTORD_STATUS_CORRUPT == 6);
    CHECK(VECTORD_METRIC_COSINE == 0 && VECTORD_METRIC_L2 == 1 && VECTORD_METRIC_DOT == 2);
    /* NULL tolerance of the error accessors and of every free. */
    CHECK(vectord_error_code(NULL) == VECTORD_STATUS_INVALID_ARGUMENT);
    CHECK(strcmp(vectord_error_message(NULL), "") == 0);
    vectord_error_free(NULL);
    vectord_string_free(NULL);
    vectord_hits_free(NULL);
    vectord_strings_free(NULL);
    vectord_bytes_free(NULL);
    vectord_index_free(NULL);
    vectord_registry_close(NULL);
    CHECK(vectord_hits_len(NULL) == 0 && vectord_hits_get(NULL, 0) == NULL);
    CHECK(vectord_strings_len(NULL) == 0 && vectord_strings_get(NULL, 0) == NULL);
    CHECK(vectord_bytes_len(NULL) == 0 && vectord_bytes_data(NULL) == NULL);
    CHECK(vectord_index_len(NULL) == 0 && vectord_index_dim(NULL) == 0);
    CHECK(vectord_index_name(NULL) == NULL);
}

static void test_add_search_get(void) {
    static float vecs[N * DIM];
    static char idbuf[N][16];
    const char *ids[N];
    const char *md[N];
    vectord_index *idx = make_index("things", VECTORD_METRIC_L2);
    vectord_hits *hits = NULL;
    const vectord_hit *h;
    float got[DIM];
    char *meta = NULL;
    size_t i;

    fill_ids(idbuf, ids, N, "id");
    harness_fill(vecs, N * DIM, 1);
    for (i = 0; i < N; i++) md[i] = (i % 2 == 0) ? "{\"even\": true}" : NULL;
    CHECK_OK(vectord_index_add(idx, N, ids, vecs, md, ERR));
    CHECK(vectord_index_len(idx) == N);
    CHECK(vectord_index_dim(idx) == DIM);
    CHECK(strcmp(vectord_index_name(idx), "things") == 0);

    /* Exact query: the item itself at distance exactly 0 under l2. */
    CHECK_OK(vectord_index_search(idx, vecs + 10 * DIM, 5, &hits, ERR));
    CHECK(vectord_hits_len(hits) == 5);
    h = vectord_hits_get(hits, 0);
    CHECK(h != NULL && strcmp(h->id, "id10") == 0 && h->distance == 0.0f);
    CHECK(h != NULL && h->metadata != NULL && strcmp(h->metadata, "{\"even\": true}") == 0);
    for (i = 1; i < 5; i++) {
        CHECK(vectord_hits_get(hits, i)->distance >= vectord_hits_get(hits, i - 1)->distance);
    }
    CHECK(vectord_hits_get(hits, 5) == NULL);
    vectord_hits_free(hits);

    /* k larger than the index: all items. */
    hits = NULL;
    CHECK_OK(vectord_index_search(idx, vecs, 1000, &hits, ERR));
    CHECK(vectord_hits_len(hits) == N);
    vectord_hits_free(hits);

    /* Odd items have no metadata. */
    hits = NULL;
    CHECK_OK(vectord_index_search(idx, vecs + 11 * DIM, 1, &hits, ERR));
    h = vectord_hits_get(hits, 0);
    CHECK(h != NULL && strcmp(h->id, "id11") == 0 && h->metadata == NULL);
    vectord_hits_free(hits);

    /* Per-query ef, and the index default. */
    hits = NULL;
    CHECK_OK(vectord_index_search_ef(idx, vecs + 12 * DIM, 3, 500, &hits, ERR));
    CHECK(vectord_hits_len(hits) == 3 && strcmp(vectord_hits_get(hits, 0)->id, "id12") == 0);
    vectord_hits_free(hits);
    hits = NULL;
    CHECK_OK(vectord_index_search_ef(idx, vecs + 12 * DIM, 3, 0, &hits, ERR));
    CHECK(vectord_hits_len(hits) == 3);
    vectord_hits_free(hits);
    CHECK_OK(vectord_index_set_ef_search(idx, 128, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ef_search", vectord_index_set_ef_search(idx, 0, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ef", vectord_index_search_ef(idx, vecs, 3, 100000, &hits, ERR));

    /* get: vector and metadata. */
    CHECK_OK(vectord_index_get(idx, "id4", got, &meta, ERR));
    CHECK(memcmp(got, vecs + 4 * DIM, sizeof got) == 0);
    CHECK(meta != NULL && strcmp(meta, "{\"even\": true}") == 0);
    vectord_string_free(meta);
    meta = (char *)"sentinel";
    CHECK_OK(vectord_index_get(idx, "id5", NULL, &meta, ERR));
    CHECK(meta == NULL);
    CHECK_OK(vectord_index_get(idx, "id5", got, NULL, ERR));
    CHECK_OK(vectord_index_get(idx, "id5", NULL, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_NOT_FOUND, "nope", vectord_index_get(idx, "nope", got, &meta, ERR));

    /* Upsert: same id, new vector and metadata; the count is unchanged. */
    {
        float v[DIM];
        const char *one[1] = {"id4"};
        const char *m1[1] = {"[1,2,3]"};
        harness_fill(v, DIM, 999);
        CHECK_OK(vectord_index_add(idx, 1, one, v, m1, ERR));
        CHECK(vectord_index_len(idx) == N);
        CHECK_OK(vectord_index_get(idx, "id4", got, &meta, ERR));
        CHECK(memcmp(got, v, sizeof got) == 0);
        CHECK(meta != NULL && strcmp(meta, "[1,2,3]") == 0);
        vectord_string_free(meta);
        hits = NULL;
        CHECK_OK(vectord_index_search(idx, v, 1, &hits, ERR));
        CHECK(strcmp(vectord_hits_get(hits, 0)->id, "id4") == 0 &&
              vectord_hits_get(hits, 0)->distance == 0.0f);
        vectord_hits_free(hits);
        /* Upsert without metadata clears it. */
        CHECK_OK(vectord_index_add(idx, 1, one, v, NULL, ERR));
        meta = NULL;
        CHECK_OK(vectord_index_get(idx, "id4", NULL, &meta, ERR));
        CHECK(meta == NULL);
    }

    /* Remove: gone from get and search; absent ids are skipped. */
    {
        const char *gone[3] = {"id10", "id11", "never-there"};
        size_t j;
        int found = 0;
        CHECK_OK(vectord_index_remove(idx, 3, gone, ERR));
        CHECK(vectord_index_len(idx) == N - 2);
        CHECK_FAILS(VECTORD_STATUS_NOT_FOUND, "id10", vectord_index_get(idx, "id10", got, NULL, ERR));
        hits = NULL;
        CHECK_OK(vectord_index_search(idx, vecs + 10 * DIM, 10, &hits, ERR));
        for (j = 0; j < vectord_hits_len(hits); j++) {
            if (strcmp(vectord_hits_get(hits, j)->id, "id10") == 0) found = 1;
        }
        CHECK(!found);
        vectord_hits_free(hits);
        CHECK_OK(vectord_index_remove(idx, 0, NULL, ERR));
        CHECK_OK(vectord_index_add(idx, 0, NULL, NULL, NULL, ERR));
    }

    /* Engine errors come through with their status. */
    {
        float bad[DIM] = {0};
        const char *one[1] = {"x"};
        const char *badmd[1] = {"{not json"};
        bad[0] = 0.0f / 0.0f;
        CHECK_FAILS(VECTORD_STATUS_INVALID_VECTOR, "item 0", vectord_index_add(idx, 1, one, bad, NULL, ERR));
        CHECK_FAILS(VECTORD_STATUS_INVALID_VECTOR, "query", vectord_index_search(idx, bad, 1, &hits, ERR));
        CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "JSON", vectord_index_add(idx, 1, one, vecs, badmd, ERR));
        CHECK(vectord_index_len(idx) == N - 2);
    }

    /* Batch search: one list per query, the same as single searches. */
    {
        vectord_hits *out[6];
        size_t q;
        CHECK_OK(vectord_index_search_batch(idx, 6, vecs + 20 * DIM, 4, out, ERR));
        for (q = 0; q < 6; q++) {
            vectord_hits *single = NULL;
            size_t j;
            CHECK_OK(vectord_index_search(idx, vecs + (20 + q) * DIM, 4, &single, ERR));
            CHECK(vectord_hits_len(out[q]) == 4 && vectord_hits_len(single) == 4);
            CHECK(strcmp(vectord_hits_get(out[q], 0)->id, ids[20 + q]) == 0);
            for (j = 0; j < 4; j++) {
                CHECK(strcmp(vectord_hits_get(out[q], j)->id, vectord_hits_get(single, j)->id) == 0);
                CHECK(vectord_hits_get(out[q], j)->distance == vectord_hits_get(single, j)->distance);
            }
            vectord_hits_free(single);
            vectord_hits_free(out[q]);
        }
        /* nq == 0 is a no-op; a bad query fails the batch, allocating nothing. */
        CHECK_OK(vectord_index_search_batch(idx, 0, NULL, 4, NULL, ERR));
        {
            static float qs[3 * DIM];
            memcpy(qs, vecs, sizeof qs);
            qs[2 * DIM + 1] = 1.0f / 0.0f;
            for (q = 0; q < 3; q++) out[q] = NULL;
            CHECK_FAILS(VECTORD_STATUS_INVALID_VECTOR, "query 2",
                        vectord_index_search_batch(idx, 3, qs, 4, out, ERR));
            CHECK(out[0] == NULL && out[1] == NULL && out[2] == NULL);
        }
    }

    /* An empty index returns no hits. */
    {
        vectord_index *empty = make_index("empty", VECTORD_METRIC_COSINE);
        hits = NULL;
        CHECK_OK(vectord_index_search(empty, vecs, 3, &hits, ERR));
        CHECK(hits != NULL && vectord_hits_len(hits) == 0 && vectord_hits_get(hits, 0) == NULL);
        vectord_hits_free(hits);
        vectord_index_free(empty);
    }

    /* Not from a registry: save is refused. */
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "belongs to no persistent registry",
                vectord_index_save(idx, ERR));
    vectord_index_free(idx);
}

static void test_encode_decode(void) {
    static float vecs[N * DIM];
    static char idbuf[N][16];
    const char *ids[N];
    const char *md[N];
    uint32_t metrics[3] = {VECTORD_METRIC_COSINE, VECTORD_METRIC_L2, VECTORD_METRIC_DOT};
    int m;
    size_t i, q;

    fill_ids(idbuf, ids, N, "e");
    harness_fill(vecs, N * DIM, 7);
    for (i = 0; i < N; i++) md[i] = (i % 3 == 0) ? "{\"k\":\"v\"}" : NULL;
    for (m = 0; m < 3; m++) {
        vectord_index *a = make_index("round", metrics[m]);
        vectord_index *b = NULL;
        vectord_bytes *blob = NULL, *blob2 = NULL;
        const char *drop[2] = {"e3", "e4"};
        CHECK_OK(vectord_index_add(a, N, ids, vecs, md, ERR));
        CHECK_OK(vectord_index_remove(a, 2, drop, ERR));
        CHECK_OK(vectord_index_encode(a, &blob, ERR));
        CHECK(vectord_bytes_len(blob) > 8 && memcmp(vectord_bytes_data(blob), "LHV1", 4) == 0);
        CHECK_OK(vectord_index_decode(vectord_bytes_data(blob), vectord_bytes_len(blob), &b, ERR));
        CHECK(vectord_index_len(b) == N - 2 && vectord_index_dim(b) == DIM);
        CHECK(strcmp(vectord_index_name(b), "round") == 0);
        /* Same hits, bit-identical distances. */
        for (q = 0; q < 20; q++) {
            vectord_hits *ha = NULL, *hb = NULL;
            size_t j;
            CHECK_OK(vectord_index_search(a, vecs + q * 7 * DIM, 10, &ha, ERR));
            CHECK_OK(vectord_index_search(b, vecs + q * 7 * DIM, 10, &hb, ERR));
            CHECK(vectord_hits_len(ha) == vectord_hits_len(hb));
            for (j = 0; j < vectord_hits_len(ha) && j < vectord_hits_len(hb); j++) {
                const vectord_hit *x = vectord_hits_get(ha, j), *y = vectord_hits_get(hb, j);
                CHECK(strcmp(x->id, y->id) == 0);
                CHECK(memcmp(&x->distance, &y->distance, sizeof(float)) == 0);
                CHECK((x->metadata == NULL) == (y->metadata == NULL));
                if (x->metadata && y->metadata) CHECK(strcmp(x->metadata, y->metadata) == 0);
            }
            vectord_hits_free(ha);
            vectord_hits_free(hb);
        }
        /* Encoding the decoded index gives the same bytes. */
        CHECK_OK(vectord_index_encode(b, &blob2, ERR));
        CHECK(vectord_bytes_len(blob) == vectord_bytes_len(blob2) &&
              memcmp(vectord_bytes_data(blob), vectord_bytes_data(blob2), vectord_bytes_len(blob)) == 0);
        /* Damaged blobs are CORRUPT, never a crash. */
        {
            size_t len = vectord_bytes_len(blob);
            unsigned char *copy = (unsigned char *)malloc(len);
            vectord_index *c = NULL;
            memcpy(copy, vectord_bytes_data(blob), len);
            copy[len - 5] ^= 0x40;
            CHECK_FAILS(VECTORD_STATUS_CORRUPT, "", vectord_index_decode(copy, len, &c, ERR));
            CHECK_FAILS(VECTORD_STATUS_CORRUPT, "", vectord_index_decode(copy, len / 2, &c, ERR));
            CHECK_FAILS(VECTORD_STATUS_CORRUPT, "", vectord_index_decode(copy, 0, &c, ERR));
            CHECK(c == NULL);
            free(copy);
        }
        vectord_bytes_free(blob);
        vectord_bytes_free(blob2);
        vectord_index_free(a);
        vectord_index_free(b);
    }
}

/* quantization = int8: the index says so, exact matches come back at
 * distance 0 (the walk runs on codes, the results are re-ranked in f32), and
 * an encode/decode round trip keeps the quantization and every bit of the
 * answers. 1200 items: above the size at which the quantizer is trained. */
static void test_int8(void) {
    enum { NQ = 1200 };
    static float vecs[NQ * DIM];
    static char idbuf[NQ][16];
    const char *ids[NQ];
    vectord_index_params p;
    vectord_index *a = NULL, *b = NULL;
    vectord_bytes *blob = NULL, *blob2 = NULL;
    size_t q;

    CHECK(VECTORD_QUANTIZATION_NONE == 0 && VECTORD_QUANTIZATION_INT8 == 1);
    fill_ids(idbuf, ids, NQ, "q");
    harness_fill(vecs, NQ * DIM, 11);
    memset(&p, 0, sizeof p);
    p.name = "int8";
    p.dim = DIM;
    p.metric = VECTORD_METRIC_L2;
    p.quantization = VECTORD_QUANTIZATION_INT8;
    p.ef_search = 64;
    CHECK_OK(vectord_index_new(&p, &a, ERR));
    CHECK(vectord_index_quantization(a) == VECTORD_QUANTIZATION_INT8);
    CHECK(vectord_index_quantization(NULL) == VECTORD_QUANTIZATION_NONE);
    CHECK_OK(vectord_index_add(a, NQ, ids, vecs, NULL, ERR));
    CHECK_OK(vectord_index_encode(a, &blob, ERR));
    CHECK_OK(vectord_index_decode(vectord_bytes_data(blob), vectord_bytes_len(blob), &b, ERR));
    CHECK(vectord_index_quantization(b) == VECTORD_QUANTIZATION_INT8);
    for (q = 0; q < 30; q++) {
        vectord_hits *ha = NULL, *hb = NULL;
        size_t j;
        CHECK_OK(vectord_index_search(a, vecs + q * 37 * DIM, 5, &ha, ERR));
        CHECK_OK(vectord_index_search(b, vecs + q * 37 * DIM, 5, &hb, ERR));
        CHECK(vectord_hits_len(ha) == 5 && vectord_hits_len(hb) == 5);
        CHECK(strcmp(vectord_hits_get(ha, 0)->id, ids[q * 37]) == 0);
        CHECK(vectord_hits_get(ha, 0)->distance == 0.0f);
        for (j = 0; j < 5; j++) {
            const vectord_hit *x = vectord_hits_get(ha, j), *y = vectord_hits_get(hb, j);
            CHECK(strcmp(x->id, y->id) == 0);
            CHECK(memcmp(&x->distance, &y->distance, sizeof(float)) == 0);
        }
        vectord_hits_free(ha);
        vectord_hits_free(hb);
    }
    CHECK_OK(vectord_index_encode(b, &blob2, ERR));
    CHECK(vectord_bytes_len(blob) == vectord_bytes_len(blob2) &&
          memcmp(vectord_bytes_data(blob), vectord_bytes_data(blob2), vectord_bytes_len(blob)) == 0);
    vectord_bytes_free(blob);
    vectord_bytes_free(blob2);
    vectord_index_free(a);
    vectord_index_free(b);
}

static void test_refs(void) {
    float v[DIM];
    const char *one[1] = {"only"};
    vectord_index *a = make_index("shared", VECTORD_METRIC_DOT);
    vectord_index *b = NULL;
    harness_fill(v, DIM, 3);
    CHECK_OK(vectord_index_ref(a, &b, ERR));
    CHECK(b != NULL && b != a);
    CHECK_OK(vectord_index_add(a, 1, one, v, NULL, ERR));
    CHECK(vectord_index_len(b) == 1);
    vectord_index_free(a);
    /* The second reference keeps the index alive. */
    CHECK(vectord_index_len(b) == 1 && strcmp(vectord_index_name(b), "shared") == 0);
    CHECK_OK(vectord_index_get(b, "only", NULL, NULL, ERR));
    vectord_index_free(b);
}

/* The float at row `i` of a copy of an array that starts one byte past an
 * aligned address (floats inside a packed record, say). Built through
 * `void *` and filled with memcpy, so the C side never loads through it. */
static const float *odd_row(const char *raw, size_t i) {
    return (const float *)(const void *)(raw + 1 + i * DIM * sizeof(float));
}

/* Misaligned float arrays are read and written bytewise by the library:
 * every call gives exactly what the aligned call gives. */
static void test_misaligned_floats(void) {
    static float vecs[N * DIM];
    static char idbuf[N][16];
    const char *ids[N];
    char *raw = (char *)malloc(sizeof vecs + 1);
    char *got_raw = (char *)malloc(DIM * sizeof(float) + 1);
    float got[DIM];
    vectord_index *a = make_index("aligned", VECTORD_METRIC_L2);
    vectord_index *b = make_index("odd", VECTORD_METRIC_L2);
    vectord_hits *out_a[6], *out_b[6];
    size_t i, q, j;

    fill_ids(idbuf, ids, N, "m");
    harness_fill(vecs, N * DIM, 11);
    memcpy(raw + 1, vecs, sizeof vecs);
    CHECK(((size_t)odd_row(raw, 0)) % sizeof(float) != 0);

    /* add: the misaligned copy stores the same vectors. */
    CHECK_OK(vectord_index_add(a, N, ids, vecs, NULL, ERR));
    CHECK_OK(vectord_index_add(b, N, ids, odd_row(raw, 0), NULL, ERR));
    CHECK(vectord_index_len(b) == N);
    for (i = 0; i < N; i += 17) {
        CHECK_OK(vectord_index_get(b, ids[i], got, NULL, ERR));
        CHECK(memcmp(got, vecs + i * DIM, sizeof got) == 0);
    }

    /* search and search_ef: same hits, bit-identical distances. */
    for (q = 0; q < 10; q++) {
        vectord_hits *ha = NULL, *hb = NULL, *hc = NULL;
        CHECK_OK(vectord_index_search(a, vecs + q * 13 * DIM, 5, &ha, ERR));
        CHECK_OK(vectord_index_search(a, odd_row(raw, q * 13), 5, &hb, ERR));
        CHECK_OK(vectord_index_search_ef(a, odd_row(raw, q * 13), 5, 64, &hc, ERR));
        CHECK(vectord_hits_len(ha) == 5 && vectord_hits_len(hb) == 5 && vectord_hits_len(hc) == 5);
        CHECK(strcmp(vectord_hits_get(hb, 0)->id, ids[q * 13]) == 0);
        for (j = 0; j < vectord_hits_len(ha) && j < vectord_hits_len(hb); j++) {
            const vectord_hit *x = vectord_hits_get(ha, j), *y = vectord_hits_get(hb, j);
            const vectord_hit *z = vectord_hits_get(hc, j);
            CHECK(strcmp(x->id, y->id) == 0 && strcmp(x->id, z->id) == 0);
            CHECK(memcmp(&x->distance, &y->distance, sizeof(float)) == 0);
            CHECK(memcmp(&x->distance, &z->distance, sizeof(float)) == 0);
        }
        vectord_hits_free(ha);
        vectord_hits_free(hb);
        vectord_hits_free(hc);
    }

    /* search_batch */
    CHECK_OK(vectord_index_search_batch(a, 6, vecs + 30 * DIM, 4, out_a, ERR));
    CHECK_OK(vectord_index_search_batch(a, 6, odd_row(raw, 30), 4, out_b, ERR));
    for (q = 0; q < 6; q++) {
        CHECK(vectord_hits_len(out_a[q]) == 4 && vectord_hits_len(out_b[q]) == 4);
        for (j = 0; j < 4 && j < vectord_hits_len(out_a[q]) && j < vectord_hits_len(out_b[q]); j++) {
            const vectord_hit *x = vectord_hits_get(out_a[q], j), *y = vectord_hits_get(out_b[q], j);
            CHECK(strcmp(x->id, y->id) == 0);
            CHECK(memcmp(&x->distance, &y->distance, sizeof(float)) == 0);
        }
        vectord_hits_free(out_a[q]);
        vectord_hits_free(out_b[q]);
    }

    /* get into a misaligned vector_out: the bytes of the aligned result. */
    memset(got_raw, 0x55, DIM * sizeof(float) + 1);
    CHECK_OK(vectord_index_get(a, ids[42], (float *)(void *)(got_raw + 1), NULL, ERR));
    CHECK(memcmp(got_raw + 1, vecs + 42 * DIM, DIM * sizeof(float)) == 0);
    CHECK((unsigned char)got_raw[0] == 0x55);

    vectord_index_free(a);
    vectord_index_free(b);
    free(raw);
    free(got_raw);
}

/* Read-only calls take const handles: this compiles without a warning
 * under -Werror only if they do. */
static void read_through_const(const vectord_index *idx, const float *query) {
    vectord_hits *hits = NULL;
    vectord_hits *batch[1] = {NULL};
    vectord_bytes *blob = NULL;
    vectord_index *again = NULL;
    float got[DIM];
    CHECK(vectord_index_len(idx) > 0 && vectord_index_dim(idx) == DIM);
    CHECK(vectord_index_name(idx) != NULL);
    CHECK_OK(vectord_index_search(idx, query, 1, &hits, ERR));
    vectord_hits_free(hits);
    hits = NULL;
    CHECK_OK(vectord_index_search_ef(idx, query, 1, 10, &hits, ERR));
    vectord_hits_free(hits);
    CHECK_OK(vectord_index_search_batch(idx, 1, query, 1, batch, ERR));
    vectord_hits_free(batch[0]);
    CHECK_OK(vectord_index_get(idx, "only", got, NULL, ERR));
    CHECK_OK(vectord_index_encode(idx, &blob, ERR));
    vectord_bytes_free(blob);
    CHECK_OK(vectord_index_ref(idx, &again, ERR));
    vectord_index_free(again);
}

static void test_const_handles(void) {
    float v[DIM];
    const char *one[1] = {"only"};
    vectord_index *idx = make_index("const", VECTORD_METRIC_L2);
    harness_fill(v, DIM, 5);
    CHECK_OK(vectord_index_add(idx, 1, one, v, NULL, ERR));
    read_through_const(idx, v);
    vectord_index_free(idx);
}

int main(void) {
    test_version();
    test_add_search_get();
    test_encode_decode();
    test_int8();
    test_refs();
    test_misaligned_floats();
    test_const_handles();
    return harness_finish("test_index");
}
