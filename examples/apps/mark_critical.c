/* mark_critical.c: an application marks threads latency-critical for the app_priority
 * policy, through the C interface sclc generates from the policy.
 *
 *   sclc build examples/app_priority.scl --emit c-header -o examples/apps/app_priority.h
 *   cc -o mark_critical examples/apps/mark_critical.c -lbpf
 *   sclc load examples/app_priority.scl --pin prio      (as root)
 *   ./mark_critical prio 1234 1240     mark threads 1234 and 1240
 *   ./mark_critical --unmark prio 1234 unmark thread 1234
 *   ./mark_critical --query prio 1240  print whether thread 1240 is marked
 *
 * With no TID it acts on its own calling thread, as an application does for its RPC
 * dispatcher or log writer: see mark_this_thread(). Exit status: 0, 1 when the kernel
 * refused (the message says why), 2 for a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "app_priority.h"

/* What an application calls from the thread it wants served first. `fd` is the map opened
 * once with app_priority_latency_critical_open(). */
static int mark_this_thread(int fd)
{
    app_priority_latency_critical_key_t tid = (uint32_t)syscall(SYS_gettid);
    app_priority_latency_critical_value_t one = 1;
    return app_priority_latency_critical_set(fd, &tid, &one);
}

static int usage(void)
{
    fprintf(stderr, "usage: mark_critical [--unmark | --query] DEPLOYMENT [TID...]\n"
                    "  marks (unmarks, queries) threads TID, or the calling thread, latency-critical\n"
                    "  in the app_priority policy pinned as DEPLOYMENT (sclc load ... --pin DEPLOYMENT)\n");
    return 2;
}

int main(int argc, char **argv)
{
    enum { MARK, UNMARK, QUERY } mode = MARK;
    const char *deployment;
    int i = 1, fd, status = 0;

    if (i < argc && strcmp(argv[i], "--unmark") == 0) {
        mode = UNMARK;
        i++;
    } else if (i < argc && strcmp(argv[i], "--query") == 0) {
        mode = QUERY;
        i++;
    }
    if (i >= argc || argv[i][0] == '-')
        return usage();
    deployment = argv[i++];

    fd = app_priority_latency_critical_open(deployment);
    if (fd < 0) {
        fprintf(stderr, "mark_critical: cannot open map latency_critical of `%s`: %s%s\n", deployment, strerror(-fd),
                fd == -EPROTO ? " (is an app_priority policy deployed under that name?)" : "");
        return 1;
    }
    if (i == argc && mode == MARK) {
        int err = mark_this_thread(fd);
        if (err) {
            fprintf(stderr, "mark_critical: cannot mark the calling thread: %s\n", strerror(-err));
            status = 1;
        } else {
            printf("marked %ld (this thread)\n", (long)syscall(SYS_gettid));
        }
    }
    for (; i < argc; i++) {
        char *end;
        unsigned long n = strtoul(argv[i], &end, 10);
        app_priority_latency_critical_key_t tid = (uint32_t)n;
        app_priority_latency_critical_value_t value = 1;
        int err = 0;

        if (*argv[i] == '\0' || *end != '\0' || n > UINT32_MAX) {
            fprintf(stderr, "mark_critical: `%s` is not a thread id\n", argv[i]);
            close(fd);
            return 2;
        }
        switch (mode) {
        case MARK:
            err = app_priority_latency_critical_set(fd, &tid, &value);
            if (!err)
                printf("marked %u\n", tid);
            break;
        case UNMARK:
            err = app_priority_latency_critical_delete(fd, &tid);
            if (err == -ENOENT) {
                printf("%u was not marked\n", tid);
                err = 0;
            } else if (!err) {
                printf("unmarked %u\n", tid);
            }
            break;
        case QUERY:
            err = app_priority_latency_critical_get(fd, &tid, &value);
            if (err == -ENOENT) {
                value = 0;
                err = 0;
            }
            if (!err)
                printf("%u %s\n", tid, value ? "critical" : "not critical");
            break;
        }
        if (err) {
            fprintf(stderr, "mark_critical: thread %u: %s\n", tid, strerror(-err));
            status = 1;
        }
    }
    close(fd);
    return status;
}
