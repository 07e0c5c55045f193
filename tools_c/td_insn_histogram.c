/* tinydeploy's QEMU TCG plugin: how often each guest instruction executed,
 * split into segments at marker addresses.
 *
 *   qemu-system-... -plugin td_insn_histogram.so,out=FILE,marks=ADDR:ADDR:...
 *
 * Every executed instruction adds one to a counter kept per guest address
 * (an inline add, cheap). When an instruction at one of the marker addresses
 * (hexadecimal, separated by ':') is about to execute, the counts since the
 * previous marker are written out as a segment, and a new segment starts,
 * tagged with that marker's position in the list. FILE gets
 *   S <marker index, -1 before the first marker>
 *   <address hex> <executions in the segment>
 * per segment with any executions, then "END". tinydeploy.cycle_model reads
 * it and weights each instruction with a per-core cost.
 *
 * Only the few plugin API calls used here are declared, after QEMU's
 * documented plugin API (docs/devel/tcg-plugins); version 1 is QEMU 7.x's.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_info_t; /* never read */

enum td_cb_flags { TD_CB_NO_REGS = 0 };
enum td_inline_op { TD_INLINE_ADD_U64 = 0 };

typedef void (*td_tb_trans_fn)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*td_vcpu_udata_fn)(unsigned int vcpu_index, void *userdata);
typedef void (*td_udata_fn)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, td_tb_trans_fn cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, td_vcpu_udata_fn cb,
                                            enum td_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum td_inline_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, td_udata_fn cb, void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* ---- one counter per guest address --------------------------------------
 * Counters live in chunks that never move (inline ops hold their address);
 * an open-addressing table of pointers finds them by address. */
struct td_counter {
    uint64_t addr;
    uint64_t count;  /* executions so far */
    uint64_t last;   /* count when the previous segment was written */
    int mark;        /* index in the marker list, or -1 */
};

#define TD_CHUNK 4096
struct td_chunk {
    struct td_counter c[TD_CHUNK];
    size_t used;
    struct td_chunk *next;
};

static struct td_chunk *td_first, *td_current;
static struct td_counter **td_table;
static size_t td_table_size, td_table_used;
static uint64_t *td_marks;
static size_t td_n_marks;
static int td_segment_mark = -1;
static FILE *td_out;

static size_t td_slot(uint64_t addr, size_t size)
{
    return (size_t)((addr >> 1) * 0x9E3779B97F4A7C15ull) & (size - 1);
}

static void td_grow(void)
{
    size_t size = td_table_size ? td_table_size * 2 : 1u << 14;
    struct td_counter **table = calloc(size, sizeof *table);
    if (!table) {
        fprintf(stderr, "td_insn_histogram: out of memory\n");
        abort();
    }
    for (size_t i = 0; i < td_table_size; ++i) {
        struct td_counter *c = td_table[i];
        if (c) {
            size_t s = td_slot(c->addr, size);
            while (table[s])
                s = (s + 1) & (size - 1);
            table[s] = c;
        }
    }
    free(td_table);
    td_table = table;
    td_table_size = size;
}

static int td_mark_of(uint64_t addr)
{
    for (size_t i = 0; i < td_n_marks; ++i)
        if (td_marks[i] == addr)
            return (int)i;
    return -1;
}

static struct td_counter *td_counter_for(uint64_t addr)
{
    if (2 * (td_table_used + 1) > td_table_size)
        td_grow();
    size_t s = td_slot(addr, td_table_size);
    while (td_table[s]) {
        if (td_table[s]->addr == addr)
            return td_table[s];
        s = (s + 1) & (td_table_size - 1);
    }
    if (!td_current || td_current->used == TD_CHUNK) {
        struct td_chunk *chunk = calloc(1, sizeof *chunk);
        if (!chunk) {
            fprintf(stderr, "td_insn_histogram: out of memory\n");
            abort();
        }
        if (td_current)
            td_current->next = chunk;
        else
            td_first = chunk;
        td_current = chunk;
    }
    struct td_counter *c = &td_current->c[td_current->used++];
    c->addr = addr;
    c->mark = td_mark_of(addr);
    td_table[s] = c;
    ++td_table_used;
    return c;
}

/* ---- segments ------------------------------------------------------------ */

static void td_write_segment(void)
{
    int header = 0;
    for (struct td_chunk *k = td_first; k; k = k->next) {
        for (size_t i = 0; i < k->used; ++i) {
            struct td_counter *c = &k->c[i];
            if (c->count == c->last)
                continue;
            if (!header) {
                fprintf(td_out, "S %d\n", td_segment_mark);
                header = 1;
            }
            fprintf(td_out, "%llx %llu\n", (unsigned long long)c->addr,
                    (unsigned long long)(c->count - c->last));
            c->last = c->count;
        }
    }
}

static void td_on_mark(unsigned int vcpu_index, void *userdata)
{
    struct td_counter *c = userdata;
    (void)vcpu_index;
    td_write_segment();
    td_segment_mark = c->mark;
    ++c->count; /* the marker instruction opens the new segment */
}

static void td_on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        struct td_counter *c = td_counter_for(qemu_plugin_insn_vaddr(insn));
        if (c->mark >= 0)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, td_on_mark, TD_CB_NO_REGS, c);
        else
            qemu_plugin_register_vcpu_insn_exec_inline(insn, TD_INLINE_ADD_U64, &c->count, 1);
    }
}

static void td_on_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    td_write_segment();
    fputs("END\n", td_out);
    fclose(td_out);
    td_out = NULL;
}

static int td_parse_marks(const char *text)
{
    size_t n = 1;
    for (const char *p = text; *p; ++p)
        n += *p == ':';
    td_marks = calloc(n, sizeof *td_marks);
    if (!td_marks)
        return -1;
    const char *p = text;
    while (*p) {
        char *end;
        unsigned long long v = strtoull(p, &end, 16);
        if (end == p)
            return -1;
        td_marks[td_n_marks++] = v;
        p = *end == ':' ? end + 1 : end;
        if (*end && *end != ':')
            return -1;
    }
    return 0;
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const struct qemu_info_t *info,
                                                               int argc, char **argv)
{
    const char *out = NULL;
    (void)info;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out = argv[i] + 4;
        } else if (strncmp(argv[i], "marks=", 6) == 0) {
            if (td_parse_marks(argv[i] + 6) != 0) {
                fprintf(stderr, "td_insn_histogram: bad marks '%s'\n", argv[i] + 6);
                return -1;
            }
        } else {
            fprintf(stderr, "td_insn_histogram: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!out) {
        fprintf(stderr, "td_insn_histogram: out=FILE is required\n");
        return -1;
    }
    td_out = fopen(out, "w");
    if (!td_out) {
        fprintf(stderr, "td_insn_histogram: cannot write %s\n", out);
        return -1;
    }
    td_grow();
    qemu_plugin_register_vcpu_tb_trans_cb(id, td_on_translate);
    qemu_plugin_register_atexit_cb(id, td_on_exit, NULL);
    return 0;
}
