/* Concurrency: 8 threads search while 2 threads upsert and remove on the
 * same index through their own handles; errors are per call (each thread
 * provokes its own and checks the message is its own). Then a registry is
 * used from several threads, and handles outlive it. */
#include <pthread.h>

#include "harness.h"

#define DIM 16
#define BASE 400
#define SEARCHERS 8
#define WRITERS 2
#define ROUNDS 60

static vectord_index *shared_index;
/* Searches whose exact item was not the first hit. HNSW is approximate (and
 * the writers lower ef_search), so a few are allowed; wrong distances not. */
static int exact_misses;
static float base_vecs[BASE * DIM];

static void *searcher(void *arg) {
    size_t t = (size_t)arg;
    vectord_index *mine = NULL;
    size_t r;
    CHECK_OK(vectord_index_ref(shared_index, &mine, ERR));
    for (r = 0; r < ROUNDS; r++) {
        size_t which = (t * 31 + r * 7) % BASE;
        vectord_hits *hits = NULL;
        vectord_error *e = NULL;
        char expect[32];
        /* The base items are never touched by the writers: exact hit at 0. */
        CHECK_OK(vectord_index_search(mine, base_vecs + which * DIM, 5, &hits, ERR));
        snprintf(expect, sizeof expect, "base%u", (unsigned)which);
        CHECK(vectord_hits_len(hits) == 5);
        if (vectord_hits_len(hits) > 0) {
            const vectord_hit *h = vectord_hits_get(hits, 0);
            if (strcmp(h->id, expect) == 0) {
                CHECK(h->distance == 0.0f);
            } else {
                CHECK(h->distance > 0.0f);
                __atomic_add_fetch(&exact_misses, 1, __ATOMIC_RELAXED);
            }
        }
        vectord_hits_free(hits);
        if (r % 10 == 0) {
            vectord_hits *batch[4];
            size_t q;
            CHECK_OK(vectord_index_search_batch(mine, 4, base_vecs + (which % (BASE - 4)) * DIM, 3,
                                                batch, ERR));
            for (q = 0; q < 4; q++) vectord_hits_free(batch[q]);
        }
        /* An error of this thread's own, with this thread's id in it. */
        snprintf(expect, sizeof expect, "missing-%u-%u", (unsigned)t, (unsigned)r);
        CHECK(vectord_index_get(mine, expect, NULL, NULL, &e) == VECTORD_STATUS_NOT_FOUND);
        CHECK(e != NULL && strstr(vectord_error_message(e), expect) != NULL);
        vectord_error_free(e);
    }
    vectord_index_free(mine);
    return NULL;
}

static void *writer(void *arg) {
    size_t t = (size_t)arg;
    vectord_index *mine = NULL;
    size_t r;
    CHECK_OK(vectord_index_ref(shared_index, &mine, ERR));
    for (r = 0; r < ROUNDS; r++) {
        char idbuf[4][32];
        const char *ids[4];
        const char *md[4];
        float v[4 * DIM];
        size_t i;
        for (i = 0; i < 4; i++) {
            snprintf(idbuf[i], 32, "w%u-%u", (unsigned)t, (unsigned)((r + i) % 10));
            ids[i] = idbuf[i];
            md[i] = "{\"writer\": true}";
        }
        harness_fill(v, 4 * DIM, 1000 + t * 100 + r);
        CHECK_OK(vectord_index_add(mine, 4, ids, v, md, ERR));
        if (r % 3 == 0) CHECK_OK(vectord_index_remove(mine, 2, ids, ERR));
        if (r % 7 == 0) CHECK_OK(vectord_index_set_ef_search(mine, 32 + (uint32_t)r, ERR));
    }
    vectord_index_free(mine);
    return NULL;
}

static void test_search_while_writing(void) {
    vectord_index_params p;
    static char idbuf[BASE][16];
    const char *ids[BASE];
    pthread_t th[SEARCHERS + WRITERS];
    size_t i;
    memset(&p, 0, sizeof p);
    p.name = "busy";
    p.dim = DIM;
    p.metric = VECTORD_METRIC_L2;
    CHECK_OK(vectord_index_new(&p, &shared_index, ERR));
    harness_fill(base_vecs, BASE * DIM, 42);
    for (i = 0; i < BASE; i++) {
        snprintf(idbuf[i], 16, "base%u", (unsigned)i);
        ids[i] = idbuf[i];
    }
    CHECK_OK(vectord_index_add(shared_index, BASE, ids, base_vecs, NULL, ERR));
    for (i = 0; i < SEARCHERS; i++) pthread_create(&th[i], NULL, searcher, (void *)i);
    for (i = 0; i < WRITERS; i++) pthread_create(&th[SEARCHERS + i], NULL, writer, (void *)i);
    for (i = 0; i < SEARCHERS + WRITERS; i++) pthread_join(th[i], NULL);
    if (exact_misses > 0) printf("exact item not first in %d of %d searches\n", exact_misses, SEARCHERS * ROUNDS);
    CHECK(exact_misses <= SEARCHERS * ROUNDS / 20);
    /* Each writer leaves ids w<t>-0..9 minus whatever its last removes hit. */
    CHECK(vectord_index_len(shared_index) > BASE && vectord_index_len(shared_index) <= BASE + 20);
    vectord_index_free(shared_index);
}

static vectord_registry *shared_registry;

static void *registry_user(void *arg) {
    size_t t = (size_t)arg;
    char name[32];
    vectord_index_params p;
    vectord_index *idx = NULL, *again = NULL;
    vectord_strings *names = NULL;
    float v[DIM];
    const char *one[1] = {"x"};
    snprintf(name, sizeof name, "idx-%u", (unsigned)t);
    memset(&p, 0, sizeof p);
    p.name = name;
    p.dim = DIM;
    p.metric = VECTORD_METRIC_COSINE;
    CHECK_OK(vectord_registry_create(shared_registry, &p, &idx, ERR));
    harness_fill(v, DIM, t);
    CHECK_OK(vectord_index_add(idx, 1, one, v, NULL, ERR));
    CHECK_OK(vectord_registry_get(shared_registry, name, &again, ERR));
    CHECK(vectord_index_len(again) == 1);
    CHECK_OK(vectord_registry_names(shared_registry, &names, ERR));
    CHECK(vectord_strings_len(names) >= 1);
    vectord_strings_free(names);
    if (t % 2 == 1) CHECK_OK(vectord_registry_delete(shared_registry, name, ERR));
    vectord_index_free(again);
    /* idx is freed by main after the registry is closed. */
    return idx;
}

static void test_registry_threads(void) {
    pthread_t th[6];
    vectord_index *handles[6];
    vectord_strings *names = NULL;
    size_t i;
    CHECK_OK(vectord_registry_open(NULL, NULL, &shared_registry, ERR));
    for (i = 0; i < 6; i++) pthread_create(&th[i], NULL, registry_user, (void *)i);
    for (i = 0; i < 6; i++) pthread_join(th[i], (void **)&handles[i]);
    CHECK_OK(vectord_registry_names(shared_registry, &names, ERR));
    CHECK(vectord_strings_len(names) == 3);
    CHECK(strcmp(vectord_strings_get(names, 0), "idx-0") == 0);
    CHECK(strcmp(vectord_strings_get(names, 2), "idx-4") == 0);
    vectord_strings_free(names);
    vectord_registry_close(shared_registry);
    for (i = 0; i < 6; i++) {
        CHECK(vectord_index_len(handles[i]) == 1);
        vectord_index_free(handles[i]);
    }
}

int main(void) {
    test_search_while_writing();
    test_registry_threads();
    return harness_finish("test_threads");
}
