/* page_writes.c - an LD_PRELOAD shim for bench/page_writes: counts the
 * bytes SQLite's pwrite64 calls write per database page, into the WAL
 * (frames, and frames rewritten within a transaction) and into the file
 * (checkpoints), and writes them to $PAGE_WRITES_OUT at exit, one line per
 * page: "page wal_bytes file_bytes". The script names each page's table
 * or index from dbstat. The counters are the process's, so this file has
 * the one set of mutable globals in the tree: an interposer has nowhere
 * else to keep them. Linux only (/proc/self/fd). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

enum { MAX_PAGES = 1 << 22, MAX_FRAMES = 1 << 20, MAX_FD = 1024, WAL_HDR = 32, FRAME_HDR = 24 };
enum { FD_UNKNOWN, FD_WAL, FD_DB, FD_OTHER };

static struct {
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    int (*close)(int);
    uint64_t *wal, *file;  /* bytes per page */
    uint32_t *frame_page;  /* the page of each WAL frame, from its header */
    unsigned char kind[MAX_FD];
    uint32_t page_size;
} pw;

static void dump(void)
{
    const char *out = getenv("PAGE_WRITES_OUT");
    FILE *f = out ? fopen(out, "w") : NULL;
    if (!f) {
        fprintf(stderr, "page_writes: cannot write %s\n", out ? out : "(PAGE_WRITES_OUT unset)");
        return;
    }
    for (uint32_t i = 0; i < MAX_PAGES; i++)
        if (pw.wal[i] || pw.file[i])
            fprintf(f, "%u %llu %llu\n", i, (unsigned long long)pw.wal[i],
                    (unsigned long long)pw.file[i]);
    fclose(f);
}

static int init(void)
{
    if (pw.pwrite)
        return 0;
    void *real = dlsym(RTLD_NEXT, "pwrite64");
    memcpy(&pw.pwrite, &real, sizeof real); /* POSIX's way from dlsym to a function */
    pw.wal = calloc(MAX_PAGES, sizeof *pw.wal);
    pw.file = calloc(MAX_PAGES, sizeof *pw.file);
    pw.frame_page = calloc(MAX_FRAMES, sizeof *pw.frame_page);
    pw.page_size = 4096;
    if (!pw.pwrite || !pw.wal || !pw.file || !pw.frame_page) {
        fprintf(stderr, "page_writes: cannot start\n");
        abort();
    }
    atexit(dump);
    return 0;
}

static int fd_kind(int fd)
{
    if (fd < 0 || fd >= MAX_FD)
        return FD_OTHER;
    if (pw.kind[fd] == FD_UNKNOWN) {
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        path[n > 0 ? n : 0] = 0;
        size_t len = strlen(path);
        pw.kind[fd] = len > 4 && !strcmp(path + len - 4, "-wal")  ? FD_WAL
                      : len > 3 && !strcmp(path + len - 3, ".db") ? FD_DB
                                                                  : FD_OTHER;
    }
    return pw.kind[fd];
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void count_wal(const unsigned char *b, size_t n, off_t off)
{
    if (off == 0 && n >= WAL_HDR) {
        pw.page_size = be32(b + 8);
        return;
    }
    uint64_t frame_size = pw.page_size + FRAME_HDR;
    uint64_t at = (uint64_t)off - WAL_HDR, frame = at / frame_size;
    if (off < WAL_HDR || frame >= MAX_FRAMES)
        return;
    if (at % frame_size == 0 && n >= FRAME_HDR) /* a header, maybe with its page */
        pw.frame_page[frame] = be32(b);
    uint32_t page = pw.frame_page[frame];
    if (page < MAX_PAGES)
        pw.wal[page] += n;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    init();
    int kind = fd_kind(fd);
    if (kind == FD_WAL) {
        count_wal(buf, n, off);
    } else if (kind == FD_DB) {
        uint64_t page = (uint64_t)off / pw.page_size + 1;
        if (page < MAX_PAGES)
            pw.file[page] += n;
    }
    return pw.pwrite(fd, buf, n, off);
}

int close(int fd)
{
    if (!pw.close) {
        void *real = dlsym(RTLD_NEXT, "close");
        memcpy(&pw.close, &real, sizeof real);
    }
    if (fd >= 0 && fd < MAX_FD)
        pw.kind[fd] = FD_UNKNOWN;
    return pw.close(fd);
}
