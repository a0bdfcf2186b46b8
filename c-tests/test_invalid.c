/* Every INVALID_ARGUMENT case of the contract: NULL where a value is
 * required, k == 0, non-UTF-8 text, unknown metric, n > 0 with NULL arrays,
 * NULL entries in id arrays. Also: err may be NULL, *err is untouched on
 * success, and each failing call gets its own error object. */
#include "harness.h"

#define DIM 4

static const char BAD_UTF8[] = {'a', (char)0xff, (char)0xfe, 'b', 0};

static void test_params(void) {
    vectord_index_params p;
    vectord_index *idx = NULL;
    memset(&p, 0, sizeof p);
    p.name = "x";
    p.dim = DIM;
    p.metric = VECTORD_METRIC_L2;

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params", vectord_index_new(NULL, &idx, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_index_new(&p, NULL, ERR));
    p.name = NULL;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params->name", vectord_index_new(&p, &idx, ERR));
    p.name = BAD_UTF8;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params->name is not valid UTF-8",
                vectord_index_new(&p, &idx, ERR));
    p.name = "";
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "name", vectord_index_new(&p, &idx, ERR));
    p.name = "x";
    p.metric = 3;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params->metric 3", vectord_index_new(&p, &idx, ERR));
    p.metric = 0xFFFFFFFFu;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params->metric", vectord_index_new(&p, &idx, ERR));
    p.metric = VECTORD_METRIC_L2;
    p.quantization = 2;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params->quantization 2",
                vectord_index_new(&p, &idx, ERR));
    p.quantization = 0xFFFFFFFFu;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params->quantization 4294967295",
                vectord_index_new(&p, &idx, ERR));
    p.quantization = VECTORD_QUANTIZATION_NONE;
    p.dim = 0;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "dim", vectord_index_new(&p, &idx, ERR));
    p.dim = DIM;
    p.m = 1;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "m 1", vectord_index_new(&p, &idx, ERR));
    p.m = 0;
    p.ef_search = 70000;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ef_search", vectord_index_new(&p, &idx, ERR));
    CHECK(idx == NULL);
    p.ef_search = 0;
    CHECK_OK(vectord_index_new(&p, &idx, ERR));
    vectord_index_free(idx);
}

static void test_index_calls(void) {
    vectord_index_params p;
    vectord_index *idx = NULL, *other = NULL;
    vectord_hits *hits = NULL;
    vectord_hits *batch[2] = {NULL, NULL};
    vectord_bytes *bytes = NULL;
    float v[2 * DIM] = {1, 2, 3, 4, 5, 6, 7, 8};
    float got[DIM];
    char *meta = NULL;
    const char *ids[2] = {"a", "b"};
    const char *null_id[2] = {"a", NULL};
    const char *bad_id[2] = {"a", BAD_UTF8};
    const char *bad_md[2] = {NULL, BAD_UTF8};
    memset(&p, 0, sizeof p);
    p.name = "calls";
    p.dim = DIM;
    p.metric = VECTORD_METRIC_L2;
    CHECK_OK(vectord_index_new(&p, &idx, ERR));

    /* add */
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_add(NULL, 2, ids, v, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ids is NULL", vectord_index_add(idx, 2, NULL, v, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "vectors is NULL", vectord_index_add(idx, 2, ids, NULL, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ids[1] is NULL", vectord_index_add(idx, 2, null_id, v, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ids[1] is not valid UTF-8",
                vectord_index_add(idx, 2, bad_id, v, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "metadata[1] is not valid UTF-8",
                vectord_index_add(idx, 2, ids, v, bad_md, ERR));
    CHECK(vectord_index_len(idx) == 0);
    CHECK_OK(vectord_index_add(idx, 2, ids, v, NULL, ERR));

    /* remove */
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_remove(NULL, 1, ids, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ids is NULL", vectord_index_remove(idx, 1, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ids[1] is NULL", vectord_index_remove(idx, 2, null_id, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ids[1] is not valid UTF-8",
                vectord_index_remove(idx, 2, bad_id, ERR));
    CHECK(vectord_index_len(idx) == 2);

    /* search */
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_search(NULL, v, 1, &hits, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "query is NULL", vectord_index_search(idx, NULL, 1, &hits, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "k is 0", vectord_index_search(idx, v, 0, &hits, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_index_search(idx, v, 1, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "k is 0", vectord_index_search_ef(idx, v, 0, 10, &hits, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "query is NULL", vectord_index_search_ef(idx, NULL, 1, 10, &hits, ERR));
    CHECK(hits == NULL);

    /* search_batch */
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_search_batch(NULL, 2, v, 1, batch, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "queries is NULL",
                vectord_index_search_batch(idx, 2, NULL, 1, batch, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out is NULL", vectord_index_search_batch(idx, 2, v, 1, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "k is 0", vectord_index_search_batch(idx, 2, v, 0, batch, ERR));
    CHECK(batch[0] == NULL && batch[1] == NULL);

    /* get */
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_get(NULL, "a", got, &meta, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "id is NULL", vectord_index_get(idx, NULL, got, &meta, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "id is not valid UTF-8",
                vectord_index_get(idx, BAD_UTF8, got, &meta, ERR));

    /* the rest */
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_set_ef_search(NULL, 10, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_encode(NULL, &bytes, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_index_encode(idx, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "blob is NULL", vectord_index_decode(NULL, 10, &other, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_index_decode((const uint8_t *)"LHV1", 4, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_save(NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_ref(NULL, &other, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_index_ref(idx, NULL, ERR));
    CHECK(other == NULL && bytes == NULL);

    /* err may be NULL: the status still comes back. */
    CHECK(vectord_index_search(idx, v, 0, &hits, NULL) == VECTORD_STATUS_INVALID_ARGUMENT);
    CHECK(vectord_index_get(idx, "zzz", NULL, NULL, NULL) == VECTORD_STATUS_NOT_FOUND);
    CHECK(vectord_index_new(NULL, NULL, NULL) == VECTORD_STATUS_INVALID_ARGUMENT);

    /* *err is untouched on success. */
    {
        vectord_error *sentinel = (vectord_error *)(void *)&p;
        vectord_error *e = sentinel;
        CHECK(vectord_index_set_ef_search(idx, 50, &e) == VECTORD_STATUS_OK);
        CHECK(e == sentinel);
    }

    /* Each failure gets its own error object; earlier ones stay valid. */
    {
        vectord_error *e1 = NULL, *e2 = NULL;
        CHECK(vectord_index_get(idx, "first", NULL, NULL, &e1) == VECTORD_STATUS_NOT_FOUND);
        CHECK(vectord_index_search(idx, v, 0, &hits, &e2) == VECTORD_STATUS_INVALID_ARGUMENT);
        CHECK(e1 != NULL && e2 != NULL && e1 != e2);
        CHECK(vectord_error_code(e1) == VECTORD_STATUS_NOT_FOUND);
        CHECK(strstr(vectord_error_message(e1), "first") != NULL);
        CHECK(vectord_error_code(e2) == VECTORD_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(vectord_error_message(e2), "k is 0") != NULL);
        vectord_error_free(e2);
        CHECK(strstr(vectord_error_message(e1), "first") != NULL);
        vectord_error_free(e1);
    }
    vectord_index_free(idx);
}

static void test_registry_calls(void) {
    vectord_registry *r = NULL;
    vectord_index *idx = NULL;
    vectord_strings *names = NULL;
    vectord_index_params p;
    memset(&p, 0, sizeof p);
    p.name = "r";
    p.dim = DIM;

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_registry_open(NULL, NULL, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "storage_url is not valid UTF-8",
                vectord_registry_open(BAD_UTF8, NULL, &r, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "options_json is not valid UTF-8",
                vectord_registry_open(NULL, BAD_UTF8, &r, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "", vectord_registry_open(NULL, "{\"no_such_option\": 1}", &r, ERR));
    CHECK(r == NULL);
    CHECK_OK(vectord_registry_open(NULL, NULL, &r, ERR));

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "r is NULL", vectord_registry_create(NULL, &p, &idx, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params", vectord_registry_create(r, NULL, &idx, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_registry_create(r, &p, NULL, ERR));
    p.metric = 9;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params->metric 9", vectord_registry_create(r, &p, &idx, ERR));
    p.metric = 0;
    p.name = BAD_UTF8;
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params->name", vectord_registry_create(r, &p, &idx, ERR));

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "r is NULL", vectord_registry_get(NULL, "r", &idx, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "name is NULL", vectord_registry_get(r, NULL, &idx, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "name is not valid UTF-8", vectord_registry_get(r, BAD_UTF8, &idx, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_registry_get(r, "r", NULL, ERR));

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "r is NULL", vectord_registry_delete(NULL, "r", ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "name is NULL", vectord_registry_delete(r, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "name is not valid UTF-8", vectord_registry_delete(r, BAD_UTF8, ERR));

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "r is NULL", vectord_registry_names(NULL, &names, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_registry_names(r, NULL, ERR));

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "r is NULL", vectord_registry_import(NULL, (const uint8_t *)"x", 1, &idx, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "blob is NULL", vectord_registry_import(r, NULL, 5, &idx, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out", vectord_registry_import(r, (const uint8_t *)"x", 1, NULL, ERR));
    CHECK_FAILS(VECTORD_STATUS_CORRUPT, "", vectord_registry_import(r, (const uint8_t *)"garbage!", 8, &idx, ERR));

    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "r is NULL", vectord_registry_flush(NULL, ERR));
    CHECK(idx == NULL && names == NULL);
    vectord_registry_close(r);
}

/* Pointers C cannot make aligned-correct without breaking its own rules
 * (out-parameters, id arrays, handles at an odd address) are refused with
 * a message, never written or read through. */
static void test_misaligned_pointers(void) {
    vectord_index_params p;
    vectord_index *idx = NULL;
    float v[DIM] = {1, 2, 3, 4};
    const char *ids[1] = {"a"};
    char *raw = (char *)malloc(4 * sizeof(void *) + 1);
    void *odd = (void *)(raw + 1);
    memset(&p, 0, sizeof p);
    p.name = "misaligned";
    p.dim = DIM;
    p.metric = VECTORD_METRIC_L2;
    CHECK_OK(vectord_index_new(&p, &idx, ERR));
    CHECK_OK(vectord_index_add(idx, 1, ids, v, NULL, ERR));

    memset(raw, 0x5a, 4 * sizeof(void *) + 1);
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out (0x", vectord_index_search(idx, v, 1, (vectord_hits **)odd, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "not aligned",
                vectord_index_search_batch(idx, 1, v, 1, (vectord_hits **)odd, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "out (0x", vectord_index_new(&p, (vectord_index **)odd, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "metadata_out",
                vectord_index_get(idx, "a", NULL, (char **)odd, ERR));
    {
        size_t i;
        int untouched = 1;
        for (i = 0; i < 4 * sizeof(void *) + 1; i++) untouched &= (unsigned char)raw[i] == 0x5a;
        CHECK(untouched);
    }
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx (0x",
                vectord_index_search(odd, v, 1, (vectord_hits **)(void *)raw, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "params (0x", vectord_index_new(odd, &idx, ERR));
    memcpy(raw + 1, ids, sizeof ids);
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "ids (0x",
                vectord_index_remove(idx, 1, (const char *const *)odd, ERR));
    /* Accessors and frees ignore a pointer the library never handed out. */
    CHECK(vectord_index_len(odd) == 0 && vectord_index_name(odd) == NULL);
    CHECK(vectord_index_len(idx) == 1);
    vectord_index_free(idx);
    free(raw);
}

int main(void) {
    test_params();
    test_index_calls();
    test_registry_calls();
    test_misaligned_pointers();
    return harness_finish("test_invalid");
}
