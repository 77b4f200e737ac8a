/* fuzz_request.c: libFuzzer target of policyd/request.c, the policy
 * delegation request parser.  The input is the byte stream of one
 * connection: it is parsed the way the daemon does (parse, drain *used,
 * again until NEED_MORE or BAD), with the default limits and, chosen by the
 * first byte, with small ones that the fuzzer can reach.  Besides the
 * sanitizers it checks what the parser promises and aborts when not:
 * *used within the input and ending in '\n'; the same bytes alone give the
 * same request, and every shorter prefix of them NEED_MORE (first and last
 * byte dropped); names and values within their limits, values free of
 * '\n'; policy_request_get finds the last of each name; a refusal reason is
 * one non-empty printable line.  Built and run by tests/fuzz/run.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int ok)
{
    if (!ok)
        abort();
}

/* The small limits: from the first byte, so that each bound is hit. */
static struct policy_limits fuzz_limits(uint8_t b)
{
    struct policy_limits lim = {
        .max_bytes = 16 + (size_t)(b & 0x3f) * 8,
        .max_attrs = (size_t)(b >> 6) * 3,
        .max_name = 1 + (size_t)(b & 7),
        .max_value = (size_t)(b >> 3 & 7) * 4,
    };
    return lim;
}

static void fuzz_check_request(const struct policy_request *r, const struct policy_limits *lim,
                               const char *in, size_t used)
{
    fuzz_check(used >= 1 && in[used - 1] == '\n');
    fuzz_check(r->n_attrs <= lim->max_attrs && r->n_attrs <= POLICY_MAX_ATTRS);
    fuzz_check(used <= lim->max_bytes);
    for (size_t i = 0; i < r->n_attrs; i++) {
        const char *name = r->attrs[i].name, *value = r->attrs[i].value;
        size_t nl = strlen(name), vl = strlen(value);
        fuzz_check(nl >= 1 && nl <= lim->max_name);
        fuzz_check(vl <= lim->max_value);
        fuzz_check(memchr(name, '=', nl) == NULL && memchr(name, '\n', nl) == NULL);
        fuzz_check(memchr(value, '\n', vl) == NULL);
        fuzz_check(name >= r->text.data && value + vl < r->text.data + r->text.len + 1);
        /* the last one of that name */
        const char *got = policy_request_get(r, name);
        fuzz_check(got != NULL);
        size_t last = i;
        for (size_t k = i + 1; k < r->n_attrs; k++)
            if (strcmp(r->attrs[k].name, name) == 0)
                last = k;
        fuzz_check(got == r->attrs[last].value);
    }
    if (r->sender != NULL)
        fuzz_check(policy_request_get(r, "sender") == r->sender);
    else
        fuzz_check(policy_request_get(r, "sender") == NULL);
    if (r->request != NULL)
        fuzz_check(policy_request_get(r, "request") == r->request);
    if (r->server_port != NULL)
        fuzz_check(policy_request_get(r, "server_port") == r->server_port);
    (void)policy_request_get(r, "");
    (void)policy_request_get(r, "ccert_fingerprint");
}

static void fuzz_check_reason(const struct buf *err)
{
    fuzz_check(err->len > 0 && strlen(err->data) == err->len);
    for (size_t i = 0; i < err->len; i++) {
        unsigned char c = (unsigned char)err->data[i];
        fuzz_check(c >= 0x20 && c < 0x7f);
    }
}

/* Bytes of a connection, one request after the other, as the daemon. */
static void fuzz_connection(const char *in, size_t len, const struct policy_limits *lim)
{
    struct policy_request r, again;
    struct buf err, reply;
    policy_request_init(&r);
    policy_request_init(&again);
    buf_init(&err);
    buf_init(&reply);
    size_t off = 0;
    for (;;) {
        size_t used = 0;
        enum policy_parse ret = policy_parse(in + off, len - off, lim, &r, &used, &err);
        if (ret == POLICY_NEED_MORE) {
            fuzz_check(r.n_attrs == 0);
            fuzz_check(len - off < lim->max_bytes);
            break;
        }
        if (ret == POLICY_BAD) {
            fuzz_check(r.n_attrs == 0);
            fuzz_check_reason(&err);
            break;
        }
        fuzz_check(ret == POLICY_REQUEST);
        fuzz_check(used >= 1 && used <= len - off);
        fuzz_check_request(&r, lim, in + off, used);
        /* the request alone, in a buffer of its size: the same; its
         * strict prefixes (longest and shortest): more is needed */
        char *alone = malloc(used);
        memcpy(alone, in + off, used);
        size_t used2 = 0;
        fuzz_check(policy_parse(alone, used, lim, &again, &used2, &err) == POLICY_REQUEST);
        fuzz_check(used2 == used && again.n_attrs == r.n_attrs);
        for (size_t i = 0; i < r.n_attrs; i++)
            fuzz_check(strcmp(again.attrs[i].name, r.attrs[i].name) == 0 &&
                       strcmp(again.attrs[i].value, r.attrs[i].value) == 0);
        fuzz_check(policy_parse(alone, used - 1, lim, &again, &used2, &err) == POLICY_NEED_MORE);
        fuzz_check(policy_parse(alone, 0, lim, &again, &used2, &err) == POLICY_NEED_MORE);
        free(alone);
        /* answer it with something of the request in it */
        buf_reset(&reply);
        policy_reply_format(&reply, r.n_attrs ? r.attrs[0].value : "DUNNO");
        fuzz_check(reply.len >= 9 && memchr(reply.data, '\n', reply.len - 2) == NULL);
        off += used;
    }
    policy_request_free(&r);
    policy_request_free(&again);
    buf_free(&err);
    buf_free(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    fuzz_connection(in, size, &policy_limits_default);
    if (size > 0) {
        struct policy_limits lim = fuzz_limits(data[0]);
        fuzz_connection(in + 1, size - 1, &lim);
    }
    return 0;
}
