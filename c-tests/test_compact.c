/* vectord_index_compact: removing 90% then compacting shrinks the encoded
 * object and keeps every live item's id, vector and metadata findable. */
#include "harness.h"

#define DIM 8
#define N 2000

static size_t encoded_size(vectord_index *idx) {
    vectord_bytes *b = NULL;
    size_t n = 0;
    CHECK_OK(vectord_index_encode(idx, &b, ERR));
    n = vectord_bytes_len(b);
    vectord_bytes_free(b);
    return n;
}

static void test_compact(void) {
    static float vecs[N * DIM];
    static char ids[N][16];
    static char mds[N][24];
    const char *id_ptrs[N];
    const char *md_ptrs[N];
    const char *gone[N];
    size_t i, ngone = 0, before, after;
    vectord_index_params p;
    vectord_index *idx = NULL;

    memset(&p, 0, sizeof p);
    p.name = "compact";
    p.dim = DIM;
    p.metric = VECTORD_METRIC_L2;
    CHECK_OK(vectord_index_new(&p, &idx, ERR));
    harness_fill(vecs, N * DIM, 17);
    for (i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "c%u", (unsigned)i);
        snprintf(mds[i], sizeof mds[i], "{\"n\":%u}", (unsigned)i);
        id_ptrs[i] = ids[i];
        md_ptrs[i] = mds[i];
        if (i % 10 != 0) gone[ngone++] = ids[i];
    }
    CHECK_OK(vectord_index_add(idx, N, id_ptrs, vecs, md_ptrs, ERR));
    before = encoded_size(idx);
    CHECK_OK(vectord_index_remove(idx, ngone, gone, ERR));
    CHECK(encoded_size(idx) > before * 9 / 10);
    CHECK_OK(vectord_index_compact(idx, ERR));
    after = encoded_size(idx);
    CHECK(after * 100 <= before * 15);
    CHECK(vectord_index_len(idx) == N / 10);
    /* Compacting again has nothing to drop. */
    CHECK_OK(vectord_index_compact(idx, ERR));
    CHECK(encoded_size(idx) == after);

    for (i = 0; i < N; i += 10) {
        float got[DIM];
        char *md = NULL;
        vectord_hits *hits = NULL;
        CHECK_OK(vectord_index_get(idx, ids[i], got, &md, ERR));
        CHECK(memcmp(got, &vecs[i * DIM], sizeof got) == 0);
        CHECK(md != NULL && strcmp(md, mds[i]) == 0);
        vectord_string_free(md);
        CHECK_OK(vectord_index_search(idx, &vecs[i * DIM], 1, &hits, ERR));
        CHECK(vectord_hits_len(hits) == 1 && strcmp(vectord_hits_get(hits, 0)->id, ids[i]) == 0);
        vectord_hits_free(hits);
    }
    vectord_index_free(idx);
}

static void test_invalid(void) {
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "idx", vectord_index_compact(NULL, ERR));
    CHECK(vectord_index_compact(NULL, NULL) == VECTORD_STATUS_INVALID_ARGUMENT);
}

int main(void) {
    test_compact();
    test_invalid();
    return harness_finish("test_compact");
}
