/* daemon.c: the life cycle shared by postern's daemons (daemon.h):
 * background with a readiness pipe, pid file, state directory, privilege
 * drop.  Taken out of postern-policyd unchanged in behaviour and messages. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "conf.h"
#include "diag.h"
#include "log.h"

void daemon_init(struct daemon *d, const char *prog)
{
    memset(d, 0, sizeof *d);
    d->prog = prog;
    d->pid_fd = -1;
    d->ready_fd = -1;
}

void daemon_free(struct daemon *d)
{
    daemon_pidfile_release(d);
    mem_free(d->pid_path);
    d->pid_path = NULL;
    mem_free(d->pw.pw_name);
    d->pw.pw_name = NULL;
    if (d->ready_fd >= 0)
        close(d->ready_fd);
    d->ready_fd = -1;
}

char *daemon_absolute_path(const char *path)
{
    if (path[0] == '/')
        return mem_strdup(path);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return mem_strdup(path);
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s/%s", cwd, path);
    char *s = buf_detach(&b);
    buf_free(&b); /* buf_detach leaves b initialised */
    return s;
}

bool daemon_set_user(struct daemon *d, const char *name)
{
    struct passwd *pwp = getpwnam(name);
    if (pwp == NULL)
        return false;
    mem_free(d->pw.pw_name);
    d->pw = *pwp; /* getpwnam's buffer is reused by initgroups */
    d->pw.pw_name = mem_strdup(pwp->pw_name);
    d->pw.pw_dir = d->pw.pw_gecos = d->pw.pw_shell = d->pw.pw_passwd = NULL;
    return true;
}

/* --- background ----------------------------------------------------------- */

/* The original process: wait for the daemon's word on the pipe. */
static _Noreturn void daemon_wait_ready(pid_t child, int rfd)
{
    waitpid(child, NULL, 0);
    char c = 0;
    ssize_t n;
    do
        n = read(rfd, &c, 1);
    while (n < 0 && errno == EINTR);
    _exit(n == 1 && c == '1' ? 0 : 1);
}

void daemon_background(struct daemon *d)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        log_fatal("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid > 0) {
        close(p[1]);
        daemon_wait_ready(pid, p[0]);
    }
    close(p[0]);
    if (setsid() < 0)
        log_fatal("setsid: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    if (chdir("/") != 0)
        log_fatal("chdir /: %s", strerror(errno));
    d->ready_fd = p[1];
}

static void daemon_detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
}

void daemon_ready(struct daemon *d)
{
    if (d->ready_fd < 0)
        return;
    daemon_detach_stdio();
    if (write(d->ready_fd, "1", 1) != 1)
        log_msg(LOG_LVL_WARN, "start", "note=\"could not tell the parent process that start-up succeeded\"");
    close(d->ready_fd);
    d->ready_fd = -1;
}

/* --- files ---------------------------------------------------------------- */

bool daemon_make_dir(const char *dir, mode_t mode, const struct passwd *pw, struct buf *err)
{
    if (mkdir(dir, mode) != 0) {
        buf_printf(err, "cannot create %s: %s", dir, strerror(errno));
        return false;
    }
    if (chmod(dir, mode) != 0 || (geteuid() == 0 && chown(dir, pw->pw_uid, pw->pw_gid) != 0)) {
        buf_printf(err, "cannot set the owner or mode of %s: %s", dir, strerror(errno));
        return false;
    }
    log_msg(LOG_LVL_NOTICE, "mkdir", "path=%s owner=%s mode=%04o", dir, pw->pw_name, (unsigned)mode);
    return true;
}

/* The directory of a pid file, created when missing: a pid directory we
 * create belongs to the user, so that the daemon can remove its pid file
 * after the privilege drop. */
static bool daemon_pid_dir(const struct daemon *d, const char *path, struct buf *err)
{
    char *dir = mem_strdup(path);
    char *slash = strrchr(dir, '/');
    bool ok = true;
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        struct stat st;
        struct buf why;
        buf_init(&why);
        if (stat(dir, &st) != 0 && errno == ENOENT && !daemon_make_dir(dir, 0755, &d->pw, &why)) {
            buf_printf(err, "pid_file %s: %s", path, why.data);
            ok = false;
        }
        buf_free(&why);
    }
    mem_free(dir);
    return ok;
}

bool daemon_pidfile_take(struct daemon *d, const char *path, struct buf *err)
{
    if (!daemon_pid_dir(d, path, err))
        return false;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        buf_printf(err, "pid_file %s: cannot open: %s", path, strerror(errno));
        return false;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char text[32] = "";
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        text[strcspn(text, "\n")] = '\0';
        close(fd);
        buf_printf(err, "another %s is running (pid %s): it holds the lock of %s", d->prog, *text ? text : "?",
                   path);
        return false;
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        buf_printf(err, "pid_file %s: cannot write: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    fchmod(fd, 0644);
    d->pid_fd = fd;
    mem_free(d->pid_path);
    d->pid_path = mem_strdup(path);
    return true;
}

void daemon_pidfile_release(struct daemon *d)
{
    if (d->pid_fd < 0)
        return;
    /* after the privilege drop the directory may not be ours: an empty
     * pid file is then left (its lock dies with us) */
    if (unlink(d->pid_path) != 0 && ftruncate(d->pid_fd, 0) != 0)
        log_msg(LOG_LVL_NOTICE, "pid_file", "path=%s error=\"%s\"", d->pid_path, strerror(errno));
    close(d->pid_fd);
    d->pid_fd = -1;
}

bool daemon_state_dir_prepare(const struct daemon *d, const char *dir, struct buf *err)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return true;
        buf_printf(err, "state_dir %s is not a directory", dir);
        return false;
    }
    struct buf why;
    buf_init(&why);
    bool ok = errno == ENOENT && daemon_make_dir(dir, 0750, &d->pw, &why);
    if (!ok)
        buf_printf(err, "state_dir %s: %s", dir, why.len ? why.data : strerror(errno));
    buf_free(&why);
    return ok;
}

/* --- privileges ----------------------------------------------------------- */

bool daemon_drop_privileges(const struct daemon *d, struct buf *err)
{
    const struct passwd *pw = &d->pw;
    if (geteuid() != 0) {
        if (pw->pw_uid == geteuid())
            return true; /* started as that user already */
        buf_printf(err, "running as uid %ld, cannot switch to user %s: start as root, or set user: to the user "
                        "running %s", (long)geteuid(), pw->pw_name, d->prog);
        return false;
    }
    if (pw->pw_uid == 0) {
        log_msg(LOG_LVL_NOTICE, "privileges", "user=%s note=\"running as root as configured\"", pw->pw_name);
        return true;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        buf_printf(err, "cannot switch to user %s: %s", pw->pw_name, strerror(errno));
        return false;
    }
    if (setuid(0) == 0 || geteuid() == 0 || getuid() == 0 || getegid() == 0) {
        buf_printf(err, "still root after switching to user %s: refusing to run", pw->pw_name);
        return false;
    }
    return true;
}

bool daemon_load_conf(const char *prog, struct postern_conf *conf, const char *path)
{
    struct diags g;
    diags_init(&g);
    bool ok = conf_load(conf, path, &g);
    if (!ok) {
        diags_print(&g, stderr);
        fprintf(stderr, "%s: %zu error%s in %s\n", prog, g.n, g.n == 1 ? "" : "s", path);
    }
    diags_free(&g);
    return ok;
}

void daemon_parse_options(int argc, char **argv, const char *default_conf, void (*usage)(FILE *out),
                          struct daemon_options *o)
{
    int ch;
    memset(o, 0, sizeof *o);
    o->conf = default_conf;
    while ((ch = getopt(argc, argv, "c:fndh")) != -1) {
        switch (ch) {
        case 'c': o->conf = optarg; break;
        case 'f': o->foreground = true; break;
        case 'n': o->check = true; break;
        case 'd': o->debug = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind != argc) {
        usage(stderr);
        exit(2);
    }
}
