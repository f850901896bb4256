/* test_main.c - runs the C unit tests of the core, one group per module,
 * and prints "N passed, N failed" last (ctest and CI read the exit code;
 * people read the count). Each check compares against a naive model or a
 * stated property; seeded generators make every failure reproducible. */
#include <stdarg.h>

#include "test.h"

void t_fail(t_run *t, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    t->failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int main(void)
{
    void (*const groups[])(t_run *) = {test_codec, test_lru,    test_ids,
                                       test_snapshot, test_db, test_ingest,
                                       test_room_versions, test_walk, test_crypto,
                                       test_auth, test_event_ids, test_state_res, test_resolve, test_auth_chain,
                                       test_rendered_blocks, test_current_index};
    t_run t = {0};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        groups[i](&t);
    printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
