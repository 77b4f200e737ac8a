/* auth_dmarc.c: DMARC (RFC 7489) with libopendmarc 1.4.2, as auth_dmarc.h
 * says.  One evaluation is one libopendmarc policy context: the From:
 * domain, the DMARC record (from DNS, or handed in by a unit test), the
 * SPF and DKIM identifiers that align, then libopendmarc's verdict.
 *
 * What libopendmarc 1.4.2 does, read in the upstream 1.4.2 source and
 * checked against Debian's build (1.4.2-2+b1) by the unit tests and by
 * experiments (a name server on loopback for the DNS statuses), and what
 * this file does about it:
 *
 * - Library state.  opendmarc_policy_library_init() copies its argument
 *   into a static and loads the public suffix list into a static hash
 *   table; it is not thread-safe.  dm_users below counts the live struct
 *   dmarc_lib (under dm_mutex): the first one initialises, later ones
 *   made with the same list share it, one with another list is refused,
 *   and the last dmarc_lib_free() calls opendmarc_policy_library_shutdown().
 *   The file is opened here first: libopendmarc leaks its new hash table
 *   when it cannot open the file.
 *
 * - Organizational domain.  opendmarc_get_tld() (exported by
 *   libopendmarc.so.2 but missing from <opendmarc/dmarc.h>, so declared
 *   below) returns the longest suffix in the list plus one label, i.e. the
 *   registrable domain; it returns nothing for a name the list does not
 *   know and for a single label (we then use the name itself, as its
 *   DMARC fallback does), it treats a wildcard rule "*.x" as the rule "x"
 *   (so foo.bar.kawasaki.jp gives bar.kawasaki.jp, not the whole name),
 *   and it matches case-sensitively: names are lowercased before it sees
 *   them.  Its opendmarc_reverse_domain() drops a leftmost label of one
 *   character ("x.co.uk" becomes "uk.co."), so it gives "co.uk" for
 *   x.co.uk and "com" for x.com; dm_org_of() works around that.  The same
 *   bug makes its own DMARC lookup for x.com fall back to _dmarc.com when
 *   _dmarc.x.com has no record (which finds nothing in practice) and makes
 *   its relaxed alignment take y.com as aligned with x.com, which the
 *   filter below prevents.
 *
 * - Alignment.  opendmarc_policy_check_alignment() is wrong two ways in
 *   1.4.2: relaxed mode also accepts an identifier that is a parent of the
 *   From: domain, even a public suffix (d=co.uk aligns with From:
 *   example.co.uk), and strict mode accepts a subdomain identifier when
 *   the From: domain is itself an organizational domain (d=mail.example.com
 *   is "strictly" aligned with From: example.com).  So libopendmarc only
 *   gets the identifiers that align by RFC 7489 3.1 (strict: the same
 *   name; relaxed: the same organizational domain), checked here with the
 *   record's adkim=/aspf= once it is parsed; its verdict then agrees, and
 *   an identifier it still finds unaligned stays unaligned.  Only passing
 *   DKIM signatures are stored: opendmarc_policy_store_dkim() forgets an
 *   earlier aligned pass when a failing signature of the exact From:
 *   domain follows it.
 *
 * - The record.  libopendmarc's DNS code keeps the first TXT record under
 *   _dmarc.DOMAIN that contains "v=DMARC" (a second one is ignored, not an
 *   error) and its parser accepts tags in any order; a record with no
 *   "v=DMARC" is no record.  A unit test's record goes through the same
 *   filter; both go to opendmarc_policy_store_dmarc(), whose "domain" argument
 *   replaces the stored From: domain (we pass the From: domain) and whose
 *   organizational-domain argument marks the record as found above it
 *   (which makes sp= apply).  A parse error (bad tag value, no p=, bad v=,
 *   a second rua=) is permerror.  pct= must be 0..100 (anything else is a
 *   parse error) but a non-number parses as 0.  Its parser's scratch
 *   buffers lose their NUL for a tag name or value of exactly 512 bytes
 *   (and list items of 256, rf= items of 32) and it then reads past them:
 *   dm_record_sane() refuses such records first (permerror).
 *
 * - pct=.  libopendmarc parses pct= and returns it (fetch_pct) but never
 *   applies it; the OpenDMARC filter samples with random() itself.  We do
 *   what RFC 7489 6.6.4 says for a failing message outside the sample
 *   (arc4random_uniform, thread-safe): reject becomes quarantine,
 *   quarantine becomes none.
 *
 * - p= or sp=.  get_policy_to_enforce() takes sp= whenever it knows an
 *   organizational domain, even one equal to the From: domain.  We use it
 *   for pass/fail only and take sp= (defaulting to p=) exactly when the
 *   record's domain is not the From: domain.
 *
 * - DNS.  opendmarc_policy_query_dmarc() is not used: it looks up
 *   _dmarc.FROM and, when that gives no record for any reason, _dmarc.ORG
 *   (ORG from opendmarc_get_tld(), with the one-letter bug; the same name
 *   again when FROM is its own organizational domain), and returns the
 *   status of the last lookup only.  Tried against a name server on
 *   loopback: SERVFAIL or a timeout for _dmarc.a.example.com followed by
 *   NXDOMAIN for _dmarc.example.com gives DMARC_DNS_ERROR_NO_RECORD (none,
 *   not temperror), and a timeout for a subdomain that has a record of its
 *   own would let the organizational domain's record apply instead.  So
 *   dm_query() makes the same lookups with libopendmarc's own lookup
 *   function, dmarc_dns_get_record() (exported, not in the header either),
 *   stops at a temporary failure, skips the second lookup when FROM is
 *   its own organizational domain, and hands the record to
 *   opendmarc_policy_store_dmarc() as for a unit test's record.
 *   dmarc_dns_get_record() does res_ninit() on a resolver state on the
 *   stack, sets RES_USE_DNSSEC (EDNS0 with DO), res_nquery() for TXT,
 *   res_nclose(): the system resolver with /etc/resolv.conf and glibc's
 *   defaults (5 s timeout, 2 attempts, per name server) or RES_OPTIONS,
 *   which glibc reads once, when it first loads resolv.conf, so it must be
 *   set before the process's first lookup (a later setenv() is not seen).
 *   The status is h_errno (thread-local): TRY_AGAIN (timeout, SERVFAIL, no
 *   server reachable) and NETDB_INTERNAL are temperror, as libopendmarc
 *   has them (DMARC_DNS_ERROR_TMPERR); HOST_NOT_FOUND, NO_DATA and
 *   NO_RECOVERY are no record.  It keeps the first TXT record that
 *   contains "v=DMARC" (more than one is not an error), at most 8 KB.  A
 *   name _dmarc.FROM longer than 253 bytes is not looked up (no record;
 *   libopendmarc would truncate it).  Worst case: two lookups, each
 *   attempts x timeout x name servers.
 *
 * - Threads.  After initialisation an evaluation reads libopendmarc's
 *   statics only: the suffix table (looked up under libopendmarc's own
 *   mutexes, never written), the name-server override (unused: nscount
 *   0) and the fake-DNS table of test harnesses (opendmarc_dns_fake_record:
 *   only the unit tests fill it, before any thread starts).  Everything
 *   else is in the policy context, one per evaluation, freed on every
 *   path. */
#include "auth_dmarc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opendmarc/dmarc.h>

#include "alloc.h"

/* Exported by libopendmarc.so.2, not declared in its public header.
 * opendmarc_tld.c: the registrable domain of domain into tld; tld is left
 * untouched when the list does not know the name.  opendmarc_dns.c: the
 * first TXT record of domain that contains "v=DMARC" into got_txtbuf, or
 * NULL with the h_errno status in *reply (its fake-DNS table first, when
 * a test harness filled one). */
int opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);
char *dmarc_dns_get_record(char *domain, int *reply, char *got_txtbuf, size_t got_txtlen);

#define DM_NAME_MAX 253          /* a domain name in text, without the trailing dot */
#define DM_LABEL_MAX 63
#define DM_PROBE_MAX 200         /* see dm_org_of */
#define DM_TAG_MAX 510           /* a tag name or value in a record, see dm_record_sane */
#define DM_ITEM_MAX 254          /* an item of a list in a value */
#define DM_RF_ITEM_MAX 30        /* an item of rf= */
#define DM_TXT_MAX 8192          /* a record, with its NUL: libopendmarc's BUFSIZ */
#define DM_IP_MAX 64

struct dmarc_lib {
    char psl[MAXPATHLEN];
};

/* libopendmarc's process-wide state, shared by the live struct dmarc_lib
 * (see the file comment). */
static pthread_mutex_t dm_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned dm_users;
static char dm_psl[MAXPATHLEN];

/* --- names ---------------------------------------------------------------- */

/* A lowercase copy of a host name into out (DM_NAME_MAX + 1 bytes): false
 * when in is NULL, empty, too long, has a byte that is not a letter,
 * digit, hyphen or dot, an empty label or a label over 63 bytes. */
static bool dm_name_copy(const char *in, char *out)
{
    if (in == NULL)
        return false;
    size_t len = strnlen(in, DM_NAME_MAX + 1);
    if (len == 0 || len > DM_NAME_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            label++;
        } else if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
            label++;
        } else {
            return false;
        }
        if (label > DM_LABEL_MAX)
            return false;
        out[i] = (char)c;
    }
    if (label == 0)
        return false;
    out[len] = '\0';
    return true;
}

/* name equals parent or ends with "." parent. */
static bool dm_name_within(const char *name, const char *parent)
{
    size_t n = strlen(name), p = strlen(parent);
    if (n == p)
        return strcmp(name, parent) == 0;
    return n > p && name[n - p - 1] == '.' && strcmp(name + n - p, parent) == 0;
}

/* The organizational domain of a valid lowercase name (dm_name_copy) into
 * out (DM_NAME_MAX + 1 bytes): the name itself when libopendmarc's list
 * does not know it or the name is a public suffix.  libopendmarc drops a
 * leftmost label of one character (see the file comment), so it is asked
 * about "zz." NAME: the answer is the same for any name that is not itself
 * a public suffix, and "zz." NAME for one that is.  Labels above the
 * DM_PROBE_MAX-th byte from the end are left out first (its buffers hold
 * 255 bytes; no organizational domain is that long). */
static void dm_org_of(const char *name, char *out)
{
    const char *tail = name;
    while (strlen(tail) > DM_PROBE_MAX && strchr(tail, '.') != NULL)
        tail = strchr(tail, '.') + 1;
    char probe[DM_NAME_MAX + 4];
    snprintf(probe, sizeof probe, "zz.%s", tail);
    u_char tld[DMARC_MAXHOSTNAMELEN + 1];
    memset(tld, 0, sizeof tld);
    int r = opendmarc_get_tld((u_char *)probe, tld, sizeof tld - 1);
    char org[DM_NAME_MAX + 1];
    if (r != 0 || !dm_name_copy((const char *)tld, org) || !dm_name_within(name, org))
        strcpy(out, name);
    else
        strcpy(out, org);
}

/* --- the library ------------------------------------------------------------ */

/* Open the list ourselves first (libopendmarc leaks when it cannot). */
static bool dm_psl_readable(const char *psl, struct buf *err)
{
    int fd = open(psl, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0) {
        buf_printf(err, "cannot read the public suffix list %s: %s", psl, strerror(errno));
        return false;
    }
    bool ok = fstat(fd, &st) == 0;
    if (!ok)
        buf_printf(err, "cannot read the public suffix list %s: %s", psl, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        buf_printf(err, "cannot read the public suffix list %s: not a regular file", psl);
    ok = ok && S_ISREG(st.st_mode);
    close(fd);
    return ok;
}

/* The first user: load the list into libopendmarc (dm_mutex held). */
static bool dm_library_init(const char *psl, struct buf *err)
{
    OPENDMARC_LIB_T opts;
    memset(&opts, 0, sizeof opts);
    opts.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
    memcpy(opts.tld_source_file, psl, strlen(psl) + 1);
    opts.nscount = 0;          /* the system resolver's name servers */
    errno = 0;
    int st = opendmarc_policy_library_init(&opts);
    if (st != DMARC_PARSE_OKAY) {
        buf_printf(err, "libopendmarc cannot load the public suffix list %s: %s", psl,
                   st == DMARC_TLD_ERROR_UNKNOWN ? "unknown list type" : strerror(st));
        opendmarc_policy_library_shutdown(&opts);
        return false;
    }
    /* an empty or foreign file loads "successfully" and knows nothing */
    char org[DM_NAME_MAX + 1];
    dm_org_of("www.example.com", org);
    if (strcmp(org, "example.com") != 0) {
        buf_printf(err, "%s does not look like a public suffix list (it does not know \"com\")", psl);
        opendmarc_policy_library_shutdown(&opts);
        return false;
    }
    return true;
}

struct dmarc_lib *dmarc_lib_new(const char *psl, struct buf *err)
{
    if (psl == NULL || psl[0] == '\0') {
        buf_puts(err, "no public suffix list given");
        return NULL;
    }
    if (strlen(psl) >= MAXPATHLEN) {
        buf_printf(err, "public suffix list path too long (%zu bytes)", strlen(psl));
        return NULL;
    }
    if (!dm_psl_readable(psl, err))
        return NULL;
    bool ok = true;
    pthread_mutex_lock(&dm_mutex);
    if (dm_users > 0 && strcmp(dm_psl, psl) != 0) {
        buf_printf(err, "libopendmarc is process-wide and already uses the public suffix list %s, not %s", dm_psl,
                   psl);
        ok = false;
    } else if (dm_users == 0) {
        ok = dm_library_init(psl, err);
        if (ok)
            memcpy(dm_psl, psl, strlen(psl) + 1);
    }
    if (ok)
        dm_users++;
    pthread_mutex_unlock(&dm_mutex);
    if (!ok)
        return NULL;
    struct dmarc_lib *l = mem_alloc(sizeof *l);
    memcpy(l->psl, psl, strlen(psl) + 1);
    return l;
}

void dmarc_lib_free(struct dmarc_lib *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&dm_mutex);
    if (dm_users > 0 && --dm_users == 0) {
        OPENDMARC_LIB_T opts;
        memset(&opts, 0, sizeof opts);
        opendmarc_policy_library_shutdown(&opts);
        dm_psl[0] = '\0';
    }
    pthread_mutex_unlock(&dm_mutex);
    mem_free(l);
}

bool dmarc_org_domain(struct dmarc_lib *l, const char *domain, char *out, size_t outsz)
{
    char name[DM_NAME_MAX + 1], org[DM_NAME_MAX + 1];
    if (l == NULL || out == NULL || outsz == 0 || !dm_name_copy(domain, name))
        return false;
    dm_org_of(name, org);
    size_t len = strlen(org);
    if (len >= outsz)
        return false;
    memcpy(out, org, len + 1);
    return true;
}

/* --- one evaluation ----------------------------------------------------------- */

static void dm_reason(struct dmarc_verdict *v, enum dmarc_result r, const char *why)
{
    v->result = r;
    snprintf(v->reason, sizeof v->reason, "%s", why);
}

static enum dmarc_policy dm_policy_of(int p)
{
    switch (p) {
    case DMARC_RECORD_P_NONE:
        return DMARC_P_NONE;
    case DMARC_RECORD_P_QUARANTINE:
        return DMARC_P_QUARANTINE;
    case DMARC_RECORD_P_REJECT:
        return DMARC_P_REJECT;
    default:
        return DMARC_P_UNSET;
    }
}

static int dm_spf_outcome(enum spf_result r)
{
    switch (r) {
    case SPF_PASS:
        return DMARC_POLICY_SPF_OUTCOME_PASS;
    case SPF_FAIL:
    case SPF_SOFTFAIL:
    case SPF_PERMERROR:
        return DMARC_POLICY_SPF_OUTCOME_FAIL;
    case SPF_TEMPERROR:
        return DMARC_POLICY_SPF_OUTCOME_TMPFAIL;
    case SPF_NONE:
    case SPF_NEUTRAL:
    default:
        return DMARC_POLICY_SPF_OUTCOME_NONE;
    }
}

/* What a status of opendmarc_policy_store_dmarc() means for the verdict;
 * true when the record was parsed. */
static bool dm_record_status(int st, struct dmarc_verdict *v)
{
    char why[sizeof v->reason];
    switch (st) {
    case DMARC_PARSE_OKAY:
        return true;
    case DMARC_PARSE_ERROR_BAD_VERSION:
        dm_reason(v, DMARC_PERMERROR, "bad DMARC record: bad v= version");
        return false;
    case DMARC_PARSE_ERROR_BAD_VALUE:
        dm_reason(v, DMARC_PERMERROR, "bad DMARC record: a tag has a bad value");
        return false;
    case DMARC_PARSE_ERROR_NO_REQUIRED_P:
        dm_reason(v, DMARC_PERMERROR, "bad DMARC record: no p= tag");
        return false;
    case DMARC_PARSE_ERROR_EMPTY:
        dm_reason(v, DMARC_PERMERROR, "bad DMARC record: empty");
        return false;
    default:
        snprintf(why, sizeof why, "bad DMARC record: %s", opendmarc_policy_status_to_str(st));
        dm_reason(v, DMARC_PERMERROR, why);
        return false;
    }
}

/* The length of the longest item of text[0..len) split at sep. */
static size_t dm_longest_item(const char *text, size_t len, char sep)
{
    size_t longest = 0, item = 0;
    for (size_t i = 0; i < len; i++) {
        item = text[i] == sep ? 0 : item + 1;
        if (item > longest)
            longest = item;
    }
    return longest;
}

/* Whether a tag name is rf (libopendmarc ignores blanks in it). */
static bool dm_tag_is_rf(const char *name, size_t len)
{
    char t[3];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == ' ' || name[i] == '\t')
            continue;
        if (n == 2)
            return false;
        t[n++] = (char)(name[i] | 0x20);
    }
    return n == 2 && t[0] == 'r' && t[1] == 'f';
}

/* libopendmarc 1.4.2's opendmarc_util_cleanup() fills its buffer without
 * a NUL when the text is exactly as long as the buffer (512 bytes for a
 * tag name or value, 256 for an item of rua=, ruf= or fo=, 32 for one of
 * rf=), and its parser then reads past it.  A record that comes near
 * those sizes (the From: domain's owner writes it) is refused first. */
static bool dm_record_sane(const char *rec)
{
    for (const char *term = rec; *term != '\0';) {
        size_t len = strcspn(term, ";");
        const char *eq = memchr(term, '=', len);
        if (eq != NULL) {
            size_t name = (size_t)(eq - term), value = len - name - 1;
            if (name >= DM_TAG_MAX || value >= DM_TAG_MAX)
                return false;
            size_t items = dm_longest_item(eq + 1, value, ',');
            if (items >= DM_ITEM_MAX || dm_longest_item(eq + 1, value, ':') >= DM_ITEM_MAX)
                return false;
            if (dm_tag_is_rf(term, name) && items >= DM_RF_ITEM_MAX)
                return false;
        }
        term += len;
        if (*term == ';')
            term++;
    }
    return true;
}

/* The record found at domain at (from itself or above it) for the From:
 * domain from, both valid. */
static bool dm_store(DMARC_POLICY_T *pctx, const char *record, const char *from, const char *at,
                     struct dmarc_verdict *v)
{
    if (!dm_record_sane(record)) {
        dm_reason(v, DMARC_PERMERROR, "bad DMARC record: a tag too long");
        return false;
    }
    char *rec = mem_strdup(record);
    int st = opendmarc_policy_store_dmarc(pctx, (u_char *)rec, (u_char *)from,
                                          strcmp(at, from) != 0 ? (u_char *)at : NULL);
    mem_free(rec);
    return dm_record_status(st, v);
}

/* A unit test's record for the From: domain from (validated): none when
 * it was found at a domain that is neither from nor above it. */
static bool dm_store_record(DMARC_POLICY_T *pctx, const struct dmarc_input *in, const char *from,
                            struct dmarc_verdict *v)
{
    char at[DM_NAME_MAX + 1];
    if (in->record_domain == NULL)
        strcpy(at, from);
    else if (!dm_name_copy(in->record_domain, at) || !dm_name_within(from, at)) {
        /* the test's zone has no record for this From: domain */
        dm_reason(v, DMARC_NONE, "no DMARC record");
        return false;
    }
    if (strnlen(in->record, DM_TXT_MAX) == DM_TXT_MAX) {
        dm_reason(v, DMARC_PERMERROR, "bad DMARC record: too long");
        return false;
    }
    /* the filter libopendmarc's DNS code applies to TXT records */
    if (strstr(in->record, "v=DMARC") == NULL) {
        dm_reason(v, DMARC_NONE, "no DMARC record");
        return false;
    }
    return dm_store(pctx, in->record, from, at, v);
}

enum dm_found { DM_RECORD, DM_NO_RECORD, DM_TEMPFAIL };

/* One lookup of _dmarc.DOMAIN with libopendmarc's DNS code: the first TXT
 * record with "v=DMARC" into txt (DM_TXT_MAX bytes). */
static enum dm_found dm_lookup(const char *domain, char *txt)
{
    char name[DM_NAME_MAX + 1];
    if (strlen(domain) + 7 > DM_NAME_MAX)
        return DM_NO_RECORD;
    snprintf(name, sizeof name, "_dmarc.%s", domain);
    int reply = 0;
    memset(txt, 0, DM_TXT_MAX);
    if (dmarc_dns_get_record(name, &reply, txt, DM_TXT_MAX) != NULL && txt[0] != '\0')
        return DM_RECORD;
    return reply == TRY_AGAIN || reply == NETDB_INTERNAL ? DM_TEMPFAIL : DM_NO_RECORD;
}

/* RFC 7489 6.6.3: the record of the From: domain, else the one of its
 * organizational domain org; a temporary failure stops (see the file
 * comment). */
static bool dm_query(DMARC_POLICY_T *pctx, const char *from, const char *org, struct dmarc_verdict *v)
{
    char *txt = mem_alloc(DM_TXT_MAX);
    const char *at = from;
    enum dm_found f = dm_lookup(from, txt);
    if (f == DM_NO_RECORD && strcmp(org, from) != 0) {
        at = org;
        f = dm_lookup(org, txt);
    }
    bool parsed = false;
    if (f == DM_RECORD) {
        parsed = dm_store(pctx, txt, from, at, v);
    } else if (f == DM_TEMPFAIL) {
        char why[sizeof v->reason];
        snprintf(why, sizeof why, "temporary DNS failure looking up _dmarc.%.110s", at);
        dm_reason(v, DMARC_TEMPERROR, why);
    } else {
        dm_reason(v, DMARC_NONE, "no DMARC record");
    }
    mem_free(txt);
    return parsed;
}

/* RFC 7489 3.1: strict is the same name, relaxed the same organizational
 * domain.  id: NULL or anything; from, from_org: valid lowercase. */
static bool dm_aligned(const char *id, const char *from, const char *from_org, int mode, char *out)
{
    char org[DM_NAME_MAX + 1];
    if (!dm_name_copy(id, out))
        return false;
    if (strcmp(out, from) == 0)
        return true;
    if (mode == DMARC_RECORD_A_STRICT)
        return false;
    dm_org_of(out, org);
    return strcmp(org, from_org) == 0;
}

/* Hand libopendmarc the SPF identifier and the passing DKIM signatures
 * that align (see the file comment).  False when it refuses one, which
 * only running out of memory can make it do: temperror, since the
 * message might have passed. */
static bool dm_store_identifiers(DMARC_POLICY_T *pctx, const struct dmarc_input *in, const char *from,
                                 const char *from_org, struct dmarc_verdict *v)
{
    char id[DM_NAME_MAX + 1], sel[DM_NAME_MAX + 1];
    int aspf = DMARC_RECORD_A_STRICT, adkim = DMARC_RECORD_A_STRICT;
    if (opendmarc_policy_fetch_aspf(pctx, &aspf) != DMARC_PARSE_OKAY ||
        opendmarc_policy_fetch_adkim(pctx, &adkim) != DMARC_PARSE_OKAY) {
        dm_reason(v, DMARC_TEMPERROR, "libopendmarc lost the parsed record");
        return false;
    }
    if (dm_aligned(in->spf_domain, from, from_org, aspf, id) &&
        opendmarc_policy_store_spf(pctx, (u_char *)id, dm_spf_outcome(in->spf),
                                   in->spf_helo ? DMARC_POLICY_SPF_ORIGIN_HELO : DMARC_POLICY_SPF_ORIGIN_MAILFROM,
                                   NULL) != DMARC_PARSE_OKAY) {
        dm_reason(v, DMARC_TEMPERROR, "libopendmarc refused the SPF result");
        return false;
    }
    for (size_t i = 0; in->dkim != NULL && i < in->n_dkim; i++) {
        const struct dkimv_sig *s = &in->dkim[i];
        if (s->result != DKIMV_PASS || strnlen(s->domain, sizeof s->domain) == sizeof s->domain)
            continue;
        if (!dm_aligned(s->domain, from, from_org, adkim, id))
            continue;
        bool have_sel = strnlen(s->selector, sizeof s->selector) < sizeof s->selector &&
                        dm_name_copy(s->selector, sel);
        if (opendmarc_policy_store_dkim(pctx, (u_char *)id, have_sel ? (u_char *)sel : NULL,
                                        DMARC_POLICY_DKIM_OUTCOME_PASS, NULL) != DMARC_PARSE_OKAY) {
            dm_reason(v, DMARC_TEMPERROR, "libopendmarc refused a DKIM result");
            return false;
        }
    }
    return true;
}

/* RFC 7489 6.6.4: a failing message outside the pct= sample gets the next
 * lower policy. */
static enum dmarc_policy dm_sample(enum dmarc_policy p, int pct)
{
    if (pct >= 100 || (pct > 0 && arc4random_uniform(100) < (uint32_t)pct))
        return p;
    if (p == DMARC_P_REJECT)
        return DMARC_P_QUARANTINE;
    if (p == DMARC_P_QUARANTINE)
        return DMARC_P_NONE;
    return p;
}

/* After the record and the identifiers: libopendmarc's verdict. */
static void dm_verdict(DMARC_POLICY_T *pctx, const char *from, struct dmarc_verdict *v)
{
    int p = 0, sp = 0, pct = 100, dkim_al = 0, spf_al = 0;
    u_char used[DMARC_MAXHOSTNAMELEN + 1];
    memset(used, 0, sizeof used);
    if (opendmarc_policy_fetch_p(pctx, &p) != DMARC_PARSE_OKAY ||
        opendmarc_policy_fetch_sp(pctx, &sp) != DMARC_PARSE_OKAY ||
        opendmarc_policy_fetch_pct(pctx, &pct) != DMARC_PARSE_OKAY ||
        opendmarc_policy_fetch_utilized_domain(pctx, used, sizeof used - 1) != DMARC_PARSE_OKAY ||
        !dm_name_copy((const char *)used, v->policy_domain) || dm_policy_of(p) == DMARC_P_UNSET) {
        v->policy_domain[0] = '\0';
        dm_reason(v, DMARC_TEMPERROR, "libopendmarc lost the parsed record");
        return;
    }
    int enforce = opendmarc_get_policy_to_enforce(pctx);
    if (opendmarc_policy_fetch_alignment(pctx, &dkim_al, &spf_al) == DMARC_PARSE_OKAY) {
        v->dkim_aligned = dkim_al == DMARC_POLICY_DKIM_ALIGNMENT_PASS;
        v->spf_aligned = spf_al == DMARC_POLICY_SPF_ALIGNMENT_PASS;
    }
    v->p = dm_policy_of(p);
    v->sp = dm_policy_of(sp) != DMARC_P_UNSET ? dm_policy_of(sp) : v->p;
    v->subdomain_policy = strcmp(v->policy_domain, from) != 0;
    v->policy = v->subdomain_policy ? v->sp : v->p;
    switch (enforce) {
    case DMARC_POLICY_PASS:
        v->result = DMARC_PASS;
        break;
    case DMARC_POLICY_REJECT:
    case DMARC_POLICY_QUARANTINE:
    case DMARC_POLICY_NONE:
        v->result = DMARC_FAIL;
        v->policy = dm_sample(v->policy, pct);
        break;
    default:
        dm_reason(v, DMARC_TEMPERROR, "libopendmarc has no policy for a parsed record");
        v->policy = v->p = v->sp = DMARC_P_UNSET;
        v->subdomain_policy = false;
        break;
    }
}

/* The client's address as libopendmarc stores it (for reports only). */
static DMARC_POLICY_T *dm_connect(const char *ip)
{
    char text[DM_IP_MAX];
    unsigned char bin[sizeof(struct in6_addr)];
    int v6 = 0;
    if (ip != NULL && strnlen(ip, sizeof text) < sizeof text && inet_pton(AF_INET, ip, bin) == 1)
        snprintf(text, sizeof text, "%s", ip);
    else if (ip != NULL && strnlen(ip, sizeof text) < sizeof text && inet_pton(AF_INET6, ip, bin) == 1) {
        snprintf(text, sizeof text, "%s", ip);
        v6 = 1;
    } else
        snprintf(text, sizeof text, "0.0.0.0");
    return opendmarc_policy_connect_init((u_char *)text, v6);
}

void dmarc_evaluate(struct dmarc_lib *l, const struct dmarc_input *in, struct dmarc_verdict *v)
{
    char from[DM_NAME_MAX + 1];
    memset(v, 0, sizeof *v);
    if (l == NULL || in == NULL || !dm_name_copy(in->from_domain, from)) {
        dm_reason(v, DMARC_PERMERROR, "no valid From: domain");
        return;
    }
    dm_org_of(from, v->org_domain);
    DMARC_POLICY_T *pctx = dm_connect(in->ip);
    if (pctx == NULL) {
        dm_reason(v, DMARC_TEMPERROR, "libopendmarc cannot allocate a policy context");
        return;
    }
    int st = opendmarc_policy_store_from_domain(pctx, (u_char *)from);
    if (st != DMARC_PARSE_OKAY) {
        dm_reason(v, st == DMARC_PARSE_ERROR_NO_ALLOC ? DMARC_TEMPERROR : DMARC_PERMERROR,
                  "libopendmarc refuses the From: domain");
    } else {
        bool parsed = in->record != NULL ? dm_store_record(pctx, in, from, v)
                                         : dm_query(pctx, from, v->org_domain, v);
        if (parsed && dm_store_identifiers(pctx, in, from, v->org_domain, v))
            dm_verdict(pctx, from, v);
    }
    opendmarc_policy_connect_shutdown(pctx);
}

const char *dmarc_result_name(enum dmarc_result r)
{
    switch (r) {
    case DMARC_NONE:
        return "none";
    case DMARC_PASS:
        return "pass";
    case DMARC_FAIL:
        return "fail";
    case DMARC_TEMPERROR:
        return "temperror";
    case DMARC_PERMERROR:
        return "permerror";
    }
    return "permerror";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
    switch (p) {
    case DMARC_P_UNSET:
        return "";
    case DMARC_P_NONE:
        return "none";
    case DMARC_P_QUARANTINE:
        return "quarantine";
    case DMARC_P_REJECT:
        return "reject";
    }
    return "";
}
