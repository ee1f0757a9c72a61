/*
 * PanDerm Edge from C: open a bundle, classify an image file and a camera frame in memory, and
 * show how misuse is reported. docs/c-api.md explains building and linking; in short:
 *
 *   cargo build --release -p panderm-edge
 *   cc -std=c99 -Wall -Wextra -Iinclude examples/c/classify.c -o classify \
 *      -Ltarget/release -lpanderm_edge -Wl,-rpath,$PWD/target/release
 *   ./classify models/demo tests/fixtures/images/clinical_forearm_iphone14.jpg
 *   ./classify models/demo photo.jpg frame.raw 640 480 nv12
 *
 * Usage: classify BUNDLE IMAGE [RAW WIDTH HEIGHT FORMAT]
 *   FORMAT: rgb8, rgba8, bgr8, bgra8 or nv12; RAW holds the packed frame (no row padding).
 *   PANDERM_TRUSTED_KEY=KEY.pub in the environment: the bundle must be signed by that key.
 *
 * Prints one JSON report per line (the object `panderm classify --json` prints) on stdout,
 * diagnostics and the library's log messages on stderr. Exit status: 0 every image assessed,
 * 4 some image could not be assessed, 5 model error (stop using the bundle), 1 any other error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panderm.h"

/* Library log messages (warnings and errors here) go to stderr. Called from any thread. */
static void on_log(int level, const char *target, const char *message, void *user_data) {
    (void)user_data;
    static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    fprintf(stderr, "[%s %s] %s\n", (level >= 1 && level <= 5) ? names[level] : "?", target, message);
}

/* The worst outcome so far: 0 < 4 (cannot assess) < 1 (error) < 5 (model error), as the CLI. */
static int worst = 0;
static void outcome(int rc) {
    int exit_code = rc == PANDERM_OK              ? 0
                    : rc == PANDERM_CANNOT_ASSESS ? 4
                    : rc == PANDERM_MODEL_ERROR   ? 5
                                                  : 1;
    int rank[6] = {0, 2, 0, 0, 1, 3}; /* rank of exit codes 0, 1, 4, 5 */
    if (rank[exit_code] > rank[worst]) worst = exit_code;
}

/* Prints a classification's JSON (and frees it), or the error. */
static void report(const char *what, int rc, char *json) {
    if (json != NULL) {
        /* Returned for PANDERM_OK, PANDERM_CANNOT_ASSESS and PANDERM_MODEL_ERROR. */
        printf("%s\n", json);
        panderm_string_free(json);
    }
    if (rc != PANDERM_OK) {
        const char *msg = panderm_last_error();
        fprintf(stderr, "%s: %s: %s\n", what, panderm_code_name(rc), msg ? msg : "");
    }
    outcome(rc);
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL) {
            if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
                *len = (size_t)n;
            } else {
                free(buf);
                buf = NULL;
            }
        }
    }
    fclose(f);
    return buf;
}

/* Classifies a packed raw frame after copying it into rows padded to a larger stride, as
 * camera buffers often are: the library honours the stride. */
static void classify_raw(panderm_bundle *bundle, const char *path, uint32_t width, uint32_t height,
                         const char *format) {
    static const struct {
        const char *name;
        panderm_pixel_format fmt;
        uint32_t bytes_per_pixel;
    } formats[] = {{"rgb8", PANDERM_PIXEL_RGB8, 3},   {"rgba8", PANDERM_PIXEL_RGBA8, 4},
                   {"bgr8", PANDERM_PIXEL_BGR8, 3},   {"bgra8", PANDERM_PIXEL_BGRA8, 4},
                   {"nv12", PANDERM_PIXEL_NV12, 1}};
    size_t i, n = sizeof formats / sizeof formats[0];
    for (i = 0; i < n && strcmp(formats[i].name, format) != 0; i++) {
    }
    if (i == n) {
        fprintf(stderr, "unknown format %s\n", format);
        outcome(PANDERM_ERR_INVALID_ARGUMENT);
        return;
    }
    size_t row = (size_t)width * formats[i].bytes_per_pixel;
    size_t rows = formats[i].fmt == PANDERM_PIXEL_NV12 ? (size_t)height * 3 / 2 : height;
    size_t len = 0;
    uint8_t *packed = read_file(path, &len);
    if (packed == NULL || len != row * rows) {
        fprintf(stderr, "%s: expected %zu bytes of %ux%u %s\n", path, row * rows, width, height, format);
        free(packed);
        outcome(PANDERM_ERR_IO);
        return;
    }
    uint32_t stride = (uint32_t)row + 32;
    uint8_t *padded = malloc(stride * rows);
    if (padded == NULL) {
        free(packed);
        outcome(PANDERM_ERR_INTERNAL);
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        memcpy(padded + r * stride, packed + r * row, row);
        memset(padded + r * stride + row, 0xAB, stride - row); /* padding is never read */
    }
    char *json = NULL;
    int rc = panderm_classify_rgb(bundle, padded, width, height, stride, formats[i].fmt, &json);
    report(path, rc, json);
    free(padded);
    free(packed);
}

/* Misuse is reported, never undefined behaviour (docs/c-api.md, "What is checked"). */
static int check_misuse(const char *bundle_dir, const char *image) {
    int failures = 0;
    char *json = (char *)"not touched";
    panderm_bundle *b = NULL;
#define EXPECT(call, code)                                                                         \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (code)) {                                                                       \
            fprintf(stderr, "misuse check failed: %s returned %s, expected %s\n", #call,          \
                    panderm_code_name(rc_), #code);                                                \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)
    EXPECT(panderm_bundle_open(NULL, NULL, &b), PANDERM_ERR_INVALID_ARGUMENT);
    EXPECT(panderm_bundle_open(bundle_dir, NULL, NULL), PANDERM_ERR_INVALID_ARGUMENT);
    EXPECT(panderm_classify_file(NULL, image, &json), PANDERM_ERR_BAD_HANDLE);
    if (json != NULL) failures++; /* set to NULL on every error */
    EXPECT(panderm_bundle_open(bundle_dir, NULL, &b), PANDERM_OK);
    uint8_t pixel[4] = {0};
    EXPECT(panderm_classify_rgb(b, NULL, 1, 1, 3, PANDERM_PIXEL_RGB8, &json), PANDERM_ERR_INVALID_ARGUMENT);
    EXPECT(panderm_classify_rgb(b, pixel, 0, 1, 3, PANDERM_PIXEL_RGB8, &json), PANDERM_ERR_INVALID_ARGUMENT);
    EXPECT(panderm_classify_rgb(b, pixel, 1, 1, 2, PANDERM_PIXEL_RGB8, &json), PANDERM_ERR_INVALID_ARGUMENT);
    EXPECT(panderm_classify_rgb(b, pixel, 1, 1, 4, 99, &json), PANDERM_ERR_INVALID_ARGUMENT);
    EXPECT(panderm_classify_file(b, image, NULL), PANDERM_ERR_INVALID_ARGUMENT);
    panderm_bundle_close(b);
    if (panderm_last_error() != NULL) failures++; /* a good close leaves no error */
    EXPECT(panderm_classify_file(b, image, &json), PANDERM_ERR_BAD_HANDLE); /* use after close */
    panderm_bundle_close(b);                                                /* double close */
    if (panderm_last_error() == NULL) failures++;                          /* is reported */
    panderm_string_free(NULL);                                              /* ignored */
#undef EXPECT
    return failures;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 7) {
        fprintf(stderr, "usage: %s BUNDLE IMAGE [RAW WIDTH HEIGHT FORMAT]\n", argv[0]);
        return 2;
    }
    fprintf(stderr, "panderm %s\n", panderm_version());
    if (panderm_set_log_callback(on_log, NULL, PANDERM_LOG_WARN) != PANDERM_OK) {
        fprintf(stderr, "log callback: %s\n", panderm_last_error());
    }
    if (check_misuse(argv[1], argv[2]) != 0) return 1;

    panderm_bundle *bundle = NULL;
    int rc = panderm_bundle_open(argv[1], getenv("PANDERM_TRUSTED_KEY"), &bundle);
    if (rc != PANDERM_OK) {
        fprintf(stderr, "%s: %s: %s\n", argv[1], panderm_code_name(rc), panderm_last_error());
        return 1;
    }
    char *json = NULL;
    rc = panderm_classify_file(bundle, argv[2], &json);
    report(argv[2], rc, json);
    if (argc == 7) {
        classify_raw(bundle, argv[3], (uint32_t)strtoul(argv[4], NULL, 10),
                     (uint32_t)strtoul(argv[5], NULL, 10), argv[6]);
    }
    panderm_bundle_close(bundle);
    return worst;
}
