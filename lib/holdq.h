/* holdq.h: the schedule of pacing mode hold (issue 6/7), shared by
 * postern-milter (which adds the messages it holds and releases them at
 * their account's pace) and posternctl (pacing: list, release by hand,
 * pause, resume).  It lives in the milter's pace store (pacer.h,
 * state_dir/pace.sqlite, schema 4) and is the truth: nothing of it is
 * cached, so that the milter, a restart of it and posternctl agree.
 *
 *   pace_account  one row per account that ever had a message held: its
 *                 tenant, the rules' account name, the rule at the last
 *                 hold (the release uses the rules in force, this when the
 *                 account is gone from them), paused, the time of its last
 *                 release (fair order across accounts) and its held count;
 *   pace_held     one row per held message: its queue ID, account, arrival
 *                 order (seq: the release order) and, while it is being
 *                 released, when that began (claimed_ns).
 *
 * A release is crash-safe in three steps: claim (the row is marked, with
 * the pace charged in the same transaction), run postsuper -H, then
 * holdq_done() deletes the row.  A row left claimed by a crash is
 * released again after a restart (postsuper -H of a message already
 * released does nothing).  Postfix keeps one queue file per message, so a
 * message is never sent twice.
 *
 * Each function is one statement (atomic in autocommit mode) unless said
 * otherwise; callers that combine several open a transaction (store.h).
 * Times are wall-clock nanoseconds.  False / -1 with err set on a store
 * failure. */
#ifndef POSTERN_HOLDQ_H
#define POSTERN_HOLDQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

#define HOLDQ_KEY_MAX 600      /* "tenant/who" */
#define HOLDQ_QID_MAX 32

struct holdq_account {
    char account[HOLDQ_KEY_MAX];      /* the bucket key "tenant/who" */
    char tenant[256];
    char rule_account[HOLDQ_KEY_MAX]; /* the rules' account name ("*" for the wildcard) */
    uint64_t count, period_s, burst;  /* the rule at the last hold */
    char unit[16];                    /* its unit's name ("minute") */
    bool paused;
    int64_t last_release_ns;
    uint64_t held;                    /* messages held (claimed ones included) */
    uint64_t claimed;                 /* of them, being released */
    int64_t oldest_ns;                /* held_ns of the first one (0: none); holdq_accounts only */
};

struct holdq_msg {
    char queue_id[HOLDQ_QID_MAX];
    char account[HOLDQ_KEY_MAX];
    int64_t seq;
    int64_t held_ns;
    int64_t claimed_ns;               /* 0: waiting */
};

/* Record a held message (a = its account with the rule; paused and the
 * counts are not written).  Two statements and a trigger: call inside a
 * transaction.  A row with the same queue ID (Postfix reuses short IDs
 * once a message is gone) is replaced. */
bool holdq_add(struct store *st, const char *queue_id, const struct holdq_account *a, int64_t now_ns,
               struct buf *err);

/* Whether the account has messages held (1) or not (0), and its pause
 * flag (false when unknown); -1 on failure. */
int holdq_pending(struct store *st, const char *account, bool *paused, struct buf *err);

/* How many messages the account has held (0 when unknown) and its pause
 * flag; -1 on failure. */
int64_t holdq_held(struct store *st, const char *account, bool *paused, struct buf *err);

/* One page of the accounts with a message waiting and not paused, in
 * release order (least recently released first), after the account
 * `after` of the previous page (NULL: from the start): at most limit into
 * out[] (oldest_ns not filled).  Through an index: no look at the held
 * messages.  False on failure. */
bool holdq_accounts_ready(struct store *st, const struct holdq_account *after, size_t limit,
                          struct holdq_account *out, size_t *n, struct buf *err);

/* One account; 1 found, 0 not, -1 failure. */
int holdq_account_get(struct store *st, const char *account, struct holdq_account *out, struct buf *err);

/* The accounts (ready_only: those with unclaimed held messages, not
 * paused, least recently released first; else all with held messages or
 * paused, by name), with oldest_ns.  *out is mem_alloc'ed (free with
 * mem_free). */
bool holdq_accounts(struct store *st, bool ready_only, struct holdq_account **out, size_t *n,
                    struct buf *err);

/* Claim the account's first waiting message at now_ns: 1 (m filled), 0
 * none, -1 failure. */
int holdq_claim_head(struct store *st, const char *account, int64_t now_ns, struct holdq_msg *m,
                     struct buf *err);
/* Put a claimed message back to waiting (its release failed for a reason
 * that may pass). */
bool holdq_unclaim(struct store *st, const char *queue_id, struct buf *err);
/* The message is released (or gone): delete its row; paced: record
 * now_ns as the account's last release.  Call inside a transaction. */
bool holdq_done(struct store *st, const char *queue_id, bool paced, int64_t now_ns, struct buf *err);

/* Messages in order of seq: of one account (NULL: all), claimed ones
 * only or all, at most limit (0: all).  *out is mem_alloc'ed. */
bool holdq_list(struct store *st, const char *account, bool claimed_only, size_t limit,
                struct holdq_msg **out, size_t *n, struct buf *err);

/* Set an account's pause flag: 1 done, 0 no such account, -1 failure. */
int holdq_set_paused(struct store *st, const char *account, bool paused, struct buf *err);
/* Record an account (all of a but held, last_release_ns, oldest_ns); an
 * account already known only gets a->paused (posternctl pausing an
 * account before its first hold). */
bool holdq_account_put(struct store *st, const struct holdq_account *a, struct buf *err);

#endif
