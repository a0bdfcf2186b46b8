/* Registries: in-memory lifecycle, names, import, handles outliving their
 * registry, a directory-backed registry reopened, the log callback. */
#define _XOPEN_SOURCE 700
#include <stdlib.h>
#include <dirent.h>
#include <unistd.h>

#include "harness.h"

#define DIM 6

static vectord_index_params params(const char *name, uint32_t metric) {
    vectord_index_params p;
    memset(&p, 0, sizeof p);
    p.name = name;
    p.dim = DIM;
    p.metric = metric;
    return p;
}

static void add_some(vectord_index *idx, size_t n, unsigned long long seed) {
    static float v[64 * DIM];
    static char idbuf[64][16];
    const char *ids[64];
    const char *md[64];
    size_t i;
    harness_fill(v, n * DIM, seed);
    for (i = 0; i < n; i++) {
        snprintf(idbuf[i], 16, "v%u", (unsigned)i);
        ids[i] = idbuf[i];
        md[i] = "{\"n\": 1}";
    }
    CHECK_OK(vectord_index_add(idx, n, ids, v, md, ERR));
}

/* Takes a const registry: names only reads it. */
static int names_equal(const vectord_registry *r, const char **want, size_t n) {
    vectord_strings *s = NULL;
    size_t i;
    int ok;
    if (vectord_registry_names(r, &s, NULL) != VECTORD_STATUS_OK) return 0;
    ok = vectord_strings_len(s) == n && vectord_strings_get(s, n) == NULL;
    for (i = 0; ok && i < n; i++) ok = strcmp(vectord_strings_get(s, i), want[i]) == 0;
    vectord_strings_free(s);
    return ok;
}

static void test_memory_registry(void) {
    vectord_registry *r = NULL;
    vectord_index *a = NULL, *b = NULL, *a2 = NULL, *imp = NULL;
    vectord_index_params pa = params("alpha", VECTORD_METRIC_COSINE);
    vectord_index_params pb = params("beta", VECTORD_METRIC_L2);
    vectord_bytes *blob = NULL;
    const char *none[1] = {NULL};
    const char *ab[2] = {"alpha", "beta"};
    const char *abg[3] = {"alpha", "beta", "gamma"};

    CHECK_OK(vectord_registry_open(NULL, NULL, &r, ERR));
    CHECK(names_equal(r, none, 0));
    CHECK_OK(vectord_registry_create(r, &pb, &b, ERR));
    CHECK_OK(vectord_registry_create(r, &pa, &a, ERR));
    CHECK_FAILS(VECTORD_STATUS_ALREADY_EXISTS, "alpha", vectord_registry_create(r, &pa, &a2, ERR));
    CHECK(names_equal(r, ab, 2));
    add_some(a, 20, 1);
    add_some(b, 30, 2);

    /* get returns another handle to the same index (and reads the registry
     * only, so a const pointer will do). */
    {
        const vectord_registry *cr = r;
        CHECK_OK(vectord_registry_get(cr, "alpha", &a2, ERR));
    }
    CHECK(a2 != a && vectord_index_len(a2) == 20);
    CHECK_FAILS(VECTORD_STATUS_NOT_FOUND, "nothing", vectord_registry_get(r, "nothing", &a2, ERR));
    vectord_index_free(a2);

    /* In memory: flush is a no-op, save is refused. */
    CHECK_OK(vectord_registry_flush(r, ERR));
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "", vectord_index_save(a, ERR));

    /* Import a blob under the name it carries. */
    CHECK_OK(vectord_index_encode(b, &blob, ERR));
    CHECK_FAILS(VECTORD_STATUS_ALREADY_EXISTS, "beta",
                vectord_registry_import(r, vectord_bytes_data(blob), vectord_bytes_len(blob), &imp, ERR));
    CHECK_OK(vectord_registry_delete(r, "beta", ERR));
    CHECK_FAILS(VECTORD_STATUS_NOT_FOUND, "beta", vectord_registry_delete(r, "beta", ERR));
    /* The deleted index's handle still works. */
    CHECK(vectord_index_len(b) == 30);
    add_some(b, 31, 3);
    CHECK(vectord_index_len(b) == 31);
    CHECK_OK(vectord_registry_import(r, vectord_bytes_data(blob), vectord_bytes_len(blob), &imp, ERR));
    CHECK(vectord_index_len(imp) == 30 && strcmp(vectord_index_name(imp), "beta") == 0);
    vectord_bytes_free(blob);
    {
        vectord_index_params pg = params("gamma", VECTORD_METRIC_DOT);
        vectord_index *g = NULL;
        CHECK_OK(vectord_registry_create(r, &pg, &g, ERR));
        CHECK(names_equal(r, abg, 3));
        vectord_index_free(g);
    }

    /* Handles outlive their registry. */
    vectord_registry_close(r);
    CHECK(vectord_index_len(a) == 20 && strcmp(vectord_index_name(a), "alpha") == 0);
    add_some(a, 25, 4);
    {
        vectord_hits *h = NULL;
        float q[DIM];
        harness_fill(q, DIM, 4);
        CHECK_OK(vectord_index_search(a, q, 3, &h, ERR));
        CHECK(vectord_hits_len(h) == 3 && strcmp(vectord_hits_get(h, 0)->id, "v0") == 0);
        vectord_hits_free(h);
    }
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "", vectord_index_save(a, ERR));
    vectord_index_free(a);
    vectord_index_free(b);
    vectord_index_free(imp);

    /* "" is in memory too. */
    r = NULL;
    CHECK_OK(vectord_registry_open("", NULL, &r, ERR));
    CHECK(names_equal(r, none, 0));
    vectord_registry_close(r);
}

static void remove_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void test_directory_registry(void) {
    char tmpl[] = "/tmp/vectord-c-test-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char url[512];
    vectord_registry *r = NULL;
    vectord_index *a = NULL, *b = NULL;
    vectord_index_params pa = params("kept", VECTORD_METRIC_L2);
    vectord_index_params pb = params("dropped", VECTORD_METRIC_L2);
    const char *kept[1] = {"kept"};
    float q[DIM];

    CHECK(dir != NULL);
    if (dir == NULL) return;
    snprintf(url, sizeof url, "file://%s", dir);
    CHECK_OK(vectord_registry_open(url, NULL, &r, ERR));
    CHECK_OK(vectord_registry_create(r, &pa, &a, ERR));
    CHECK_OK(vectord_registry_create(r, &pb, &b, ERR));
    add_some(a, 40, 5);
    add_some(b, 10, 6);
    CHECK_OK(vectord_index_save(a, ERR));
    CHECK_OK(vectord_registry_delete(r, "dropped", ERR));
    CHECK_OK(vectord_registry_flush(r, ERR));
    vectord_registry_close(r);
    /* After close: handles work, saving them is refused. */
    CHECK(vectord_index_len(a) == 40);
    CHECK_FAILS(VECTORD_STATUS_INVALID_ARGUMENT, "", vectord_index_save(a, ERR));
    vectord_index_free(a);
    vectord_index_free(b);

    /* Reopen (as a plain path): the saved index is back, bit for bit. */
    r = NULL;
    a = NULL;
    CHECK_OK(vectord_registry_open(dir, NULL, &r, ERR));
    CHECK(names_equal(r, kept, 1));
    CHECK_OK(vectord_registry_get(r, "kept", &a, ERR));
    CHECK(vectord_index_len(a) == 40);
    {
        vectord_hits *h = NULL;
        char *meta = NULL;
        harness_fill(q, DIM, 5);
        CHECK_OK(vectord_index_search(a, q, 1, &h, ERR));
        CHECK(strcmp(vectord_hits_get(h, 0)->id, "v0") == 0 && vectord_hits_get(h, 0)->distance == 0.0f);
        vectord_hits_free(h);
        CHECK_OK(vectord_index_get(a, "v3", NULL, &meta, ERR));
        CHECK(meta != NULL && strcmp(meta, "{\"n\": 1}") == 0);
        vectord_string_free(meta);
    }
    /* Mutations through the handle are saved by the registry. */
    {
        const char *rm[1] = {"v1"};
        CHECK_OK(vectord_index_remove(a, 1, rm, ERR));
        CHECK_OK(vectord_index_save(a, ERR));
    }
    vectord_index_free(a);
    vectord_registry_close(r);
    r = NULL;
    a = NULL;
    CHECK_OK(vectord_registry_open(url, "{}", &r, ERR));
    CHECK_OK(vectord_registry_get(r, "kept", &a, ERR));
    CHECK(vectord_index_len(a) == 39);
    vectord_index_free(a);
    vectord_registry_close(r);
    remove_tree(dir);
}

static int log_errors;
static int log_named_broken;
static void on_log(uint32_t level, const char *message, void *user) {
    CHECK(user == (void *)&log_errors);
    CHECK(level >= 1 && level <= 4 && message != NULL);
    if (level == 1) __atomic_add_fetch(&log_errors, 1, __ATOMIC_RELAXED);
    if (strstr(message, "broken") != NULL) __atomic_add_fetch(&log_named_broken, 1, __ATOMIC_RELAXED);
}

static void test_log_callback(void) {
    char tmpl[] = "/tmp/vectord-c-log-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char path[600];
    FILE *f;
    vectord_registry *r = NULL;
    vectord_index *idx = NULL;
    CHECK(dir != NULL);
    if (dir == NULL) return;
    /* A damaged object in the store: open logs an error naming it and
     * leaves it alone; the registry opens without it. Save an index, then
     * truncate the one file the store wrote. */
    {
        vectord_index_params p = params("broken", VECTORD_METRIC_L2);
        DIR *d;
        struct dirent *e;
        CHECK_OK(vectord_registry_open(dir, NULL, &r, ERR));
        CHECK_OK(vectord_registry_create(r, &p, &idx, ERR));
        add_some(idx, 5, 9);
        CHECK_OK(vectord_index_save(idx, ERR));
        vectord_index_free(idx);
        idx = NULL;
        vectord_registry_close(r);
        r = NULL;
        d = opendir(dir);
        CHECK(d != NULL);
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            f = fopen(path, "wb");
            CHECK(f != NULL);
            if (f) {
                fputs("LHV1 but not really", f);
                fclose(f);
            }
        }
        if (d) closedir(d);
    }
    vectord_set_log_callback(on_log, &log_errors);
    CHECK_OK(vectord_registry_open(dir, NULL, &r, ERR));
    CHECK(log_errors >= 1 && log_named_broken >= 1);
    CHECK_FAILS(VECTORD_STATUS_NOT_FOUND, "broken", vectord_registry_get(r, "broken", &idx, ERR));
    vectord_registry_close(r);
    /* Back to the default (stderr); the callback is no longer called. */
    vectord_set_log_callback(NULL, NULL);
    log_errors = 0;
    r = NULL;
    CHECK_OK(vectord_registry_open(dir, NULL, &r, ERR));
    CHECK(log_errors == 0);
    vectord_registry_close(r);
    remove_tree(dir);
}

int main(void) {
    test_memory_registry();
    test_directory_registry();
    test_log_callback();
    return harness_finish("test_registry");
}
