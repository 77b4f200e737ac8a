/* postq.c: postqueue -j parsed with jansson, and postqueue -i (see
 * postq.h). */
#include "postq.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "qid.h"
#include "cmd.h"

static const char *postq_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* One line's object into m; false when it is not a message. */
static bool postq_msg_read(json_t *o, struct postq_msg *m)
{
    memset(m, 0, sizeof *m);
    const char *qid = postq_str(o, "queue_id");
    const char *qname = postq_str(o, "queue_name");
    if (qid == NULL || qname == NULL || strlen(qid) >= sizeof m->queue_id || !qid_valid(qid) ||
        strlen(qname) >= sizeof m->queue_name)
        return false;
    snprintf(m->queue_id, sizeof m->queue_id, "%s", qid);
    snprintf(m->queue_name, sizeof m->queue_name, "%s", qname);
    json_t *v = json_object_get(o, "arrival_time");
    m->arrival_time = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    v = json_object_get(o, "message_size");
    m->size = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    const char *sender = postq_str(o, "sender");
    m->sender = mem_strdup(sender != NULL ? sender : "");
    json_t *rcpts = json_object_get(o, "recipients");
    if (json_is_array(rcpts) && json_array_size(rcpts) > 0) {
        m->rcpts = mem_grow(NULL, json_array_size(rcpts), sizeof *m->rcpts);
        size_t i;
        json_t *r;
        json_array_foreach(rcpts, i, r) {
            const char *addr = json_is_object(r) ? postq_str(r, "address") : NULL;
            if (addr == NULL)
                continue;
            m->rcpts[m->n_rcpts++] = mem_strdup(addr);
            const char *why = postq_str(r, "delay_reason");
            if (why != NULL && m->delay_reason == NULL)
                m->delay_reason = mem_strdup(why);
        }
    }
    return true;
}

static void postq_msg_free(struct postq_msg *m)
{
    mem_free(m->sender);
    for (size_t i = 0; i < m->n_rcpts; i++)
        mem_free(m->rcpts[i]);
    mem_free(m->rcpts);
    mem_free(m->delay_reason);
}

void postq_parse(const char *text, size_t len, struct postq_list *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        size_t n = (size_t)(le - p);
        if (n > 0) {
            json_error_t jerr;
            json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
            struct postq_msg m;
            if (json_is_object(o) && postq_msg_read(o, &m)) {
                if (out->n == cap) {
                    cap = cap != 0 ? cap * 2 : 16;
                    out->v = mem_grow(out->v, cap, sizeof *out->v);
                }
                out->v[out->n++] = m;
            } else {
                out->skipped++;
            }
            json_decref(o);
        }
        p = le + (nl != NULL ? 1 : 0);
    }
}

void postq_list_free(struct postq_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        postq_msg_free(&l->v[i]);
    mem_free(l->v);
    memset(l, 0, sizeof *l);
}

bool postq_list(const char *postqueue, const char *config_dir, struct postq_list *out, struct buf *err)
{
    memset(out, 0, sizeof *out);
    char *const argv[] = { (char *)postqueue, (char *)"-c", (char *)config_dir, (char *)"-j", NULL };
    struct buf text;
    buf_init(&text);
    int st = cmd_run(argv, &text, err);
    if (st == 0)
        postq_parse(text.data, text.len, out);
    buf_free(&text);
    return st == 0;
}

bool postq_deliver(const char *postqueue, const char *config_dir, const char *queue_id, struct buf *err)
{
    if (!qid_valid(queue_id)) {
        buf_printf(err, "not a Postfix queue ID: \"%.40s\"", queue_id);
        return false;
    }
    char *const argv[] = { (char *)postqueue, (char *)"-c", (char *)config_dir, (char *)"-i", (char *)queue_id,
                           NULL };
    return cmd_run(argv, NULL, err) == 0;
}

bool postq_release(const char *postsuper, const char *config_dir, const char *queue_id, struct buf *err)
{
    if (!qid_valid(queue_id)) {
        buf_printf(err, "not a Postfix queue ID: \"%.40s\"", queue_id);
        return false;
    }
    char *const argv[] = { (char *)postsuper, (char *)"-c", (char *)config_dir, (char *)"-H", (char *)queue_id,
                           NULL };
    struct buf errout;
    buf_init(&errout);
    int st = cmd_run_stderr(argv, NULL, &errout, err);
    char said[64]; /* " ": not the tail of a longer ID */
    snprintf(said, sizeof said, " %s: released from hold", queue_id);
    if (st > 0 && strstr(errout.data, said) != NULL) {
        st = 0;
        buf_reset(err);
    }
    buf_free(&errout);
    return st == 0;
}
