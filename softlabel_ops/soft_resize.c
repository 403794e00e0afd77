/* Compiled CPU kernel of softlabel_ops.soft_resize, built at first use by native.py.

   One pass over the output grid. Per output pixel it reads the Ky x Kx footprint through the tap
   tables; a footprint holding a single label is emitted directly (its mass is the footprint's total
   weight), any other accumulates per-class mass in a small per-call table of touched classes. Dense
   output writes only non-zero classes into a zeroed (N, C, h, w) buffer; sparse output appends each
   pixel's sorted classes to a compact growable list that is scattered into (N, K, h, w) once K is
   known. The arithmetic mirrors torch_kernel.normalise / top_classes. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define VALID_EPS 1e-6

typedef struct {
    int64_t cap, used, n_pix, max_count;
    int32_t *cls;
    float *wt;
    uint16_t *cnt;
    int failed;
} SparseBuf;

typedef struct {
    int64_t N, H, W, h, w, Ky, Kx, C, ignore, top_k;
    const int64_t *iy, *ix;
    const double *wy, *wx;
    int clamp;
    float *probs;
    float *valid;
    SparseBuf *sp;
} Job;

/* Large fresh outputs are mmapped by the allocator; asking for huge pages there cuts the cost of
   first-touch page faults, which otherwise dominates writing a 40 MB dense label. A hint only. */
static void advise_huge(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes < ((size_t)32 << 20)) return;
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t e = ((uintptr_t)p + bytes) & ~(uintptr_t)4095;
    if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p; (void)bytes;
#endif
}

/* 1 if any of the n bytes at r differs from l0 (8 bytes per step). */
static inline int bytes_differ(const uint8_t *r, int64_t n, uint8_t l0) {
    const uint64_t b = 0x0101010101010101ULL * l0;
    uint64_t d = 0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) { uint64_t v; memcpy(&v, r + j, 8); d |= v ^ b; }
    for (; j < n; j++) d |= (uint64_t)(r[j] ^ l0);
    return d != 0;
}

typedef struct {
    double *acc;     /* C + 1 (index C collects ignore mass) */
    uint8_t *mark;   /* C + 1 */
    int32_t *list;   /* C + 2: touched classes (+ one scratch slot) */
    int32_t *ord;    /* C sorted classes for sparse output */
    double *p;       /* C normalised masses for sparse output */
    double *wrow, *wcol;
    uint8_t *contig;  /* per output column: its taps are consecutive source columns */
} Scratch;

SparseBuf *sp_new(int64_t n_pix) {
    SparseBuf *b = (SparseBuf *)calloc(1, sizeof(SparseBuf));
    if (!b) return NULL;
    b->n_pix = n_pix;
    b->cap = n_pix + 16;
    b->cls = (int32_t *)malloc(b->cap * sizeof(int32_t));
    b->wt = (float *)malloc(b->cap * sizeof(float));
    b->cnt = (uint16_t *)calloc(n_pix > 0 ? n_pix : 1, sizeof(uint16_t));
    if (!b->cls || !b->wt || !b->cnt) b->failed = 1;
    return b;
}

void sp_free(SparseBuf *b) {
    if (!b) return;
    free(b->cls); free(b->wt); free(b->cnt); free(b);
}

int64_t sp_max_count(const SparseBuf *b) { return b->max_count; }
int sp_failed(const SparseBuf *b) { return b->failed; }

static int sp_reserve(SparseBuf *b, int64_t extra) {
    if (b->used + extra <= b->cap) return 1;
    int64_t cap = b->cap * 2;
    while (cap < b->used + extra) cap *= 2;
    int32_t *c = (int32_t *)realloc(b->cls, cap * sizeof(int32_t));
    if (!c) { b->failed = 1; return 0; }
    b->cls = c;
    float *w = (float *)realloc(b->wt, cap * sizeof(float));
    if (!w) { b->failed = 1; return 0; }
    b->wt = w;
    b->cap = cap;
    return 1;
}

/* Scatters the compact list into indices/weights of shape (N, K, h, w); padding gets 0. */
void sp_fill(const SparseBuf *b, int64_t N, int64_t K, int64_t hw, int64_t *indices, float *weights) {
    advise_huge(indices, (size_t)(N * K * hw) * sizeof(int64_t));
    advise_huge(weights, (size_t)(N * K * hw) * sizeof(float));
    memset(indices, 0, (size_t)(N * K * hw) * sizeof(int64_t));
    memset(weights, 0, (size_t)(N * K * hw) * sizeof(float));
    int64_t e = 0;
    for (int64_t n = 0; n < N; n++) {
        int64_t *ind = indices + n * K * hw;
        float *wts = weights + n * K * hw;
        for (int64_t q = 0; q < hw; q++) {
            int64_t cnt = b->cnt[n * hw + q];
            for (int64_t k = 0; k < cnt; k++, e++) {
                if (k < K) {
                    ind[k * hw + q] = b->cls[e];
                    wts[k * hw + q] = b->wt[e];
                }
            }
        }
    }
}

/* Normalises the masses of the `n` touched classes in S->list (ignore slot excluded) and
   writes the pixel. Mirrors torch_kernel.normalise/top_classes. */
static void emit(const Job *J, Scratch *S, int64_t n, int64_t q, int nl) {
    const int64_t hw = J->h * J->w;
    double total = 0.0, denom;
    for (int i = 0; i < nl; i++) total += S->acc[S->list[i]];
    if (J->clamp) {
        denom = 0.0;
        for (int i = 0; i < nl; i++) {
            double m = S->acc[S->list[i]];
            if (m < 0) S->acc[S->list[i]] = m = 0.0;
            denom += m;
        }
        total = total < 0 ? 0 : (total > 1 ? 1 : total);
    } else {
        denom = total;
    }
    int keep = total > VALID_EPS && denom > 0;
    J->valid[n * hw + q] = keep ? (float)total : 0.0f;
    if (J->probs) {
        if (!keep) return;
        float *out = J->probs + n * J->C * hw + q;
        for (int i = 0; i < nl; i++) {
            int32_t c = S->list[i];
            out[c * hw] = (float)(S->acc[c] / denom);
        }
        return;
    }
    SparseBuf *B = J->sp;
    int cnt = 0;
    if (keep) {
        for (int i = 0; i < nl; i++) {
            int32_t c = S->list[i];
            double p = S->acc[c] / denom;
            if (p == 0.0) continue;
            /* insertion by decreasing p; equal p puts the lower class first */
            int j = cnt++;
            while (j > 0 && (S->p[j - 1] < p || (S->p[j - 1] == p && S->ord[j - 1] > c))) {
                S->p[j] = S->p[j - 1]; S->ord[j] = S->ord[j - 1]; j--;
            }
            S->p[j] = p; S->ord[j] = c;
        }
    }
    if (cnt > B->max_count) B->max_count = cnt;
    int kept = cnt;
    if (J->top_k > 0 && kept > J->top_k) kept = (int)J->top_k;
    double s = 1.0;
    if (kept < cnt) {
        s = 0.0;
        for (int i = 0; i < kept; i++) s += S->p[i];
        if (s == 0.0) s = 1.0;
    }
    if (!sp_reserve(B, kept)) return;
    for (int i = 0; i < kept; i++) {
        B->cls[B->used] = S->ord[i];
        B->wt[B->used++] = (float)(kept < cnt ? S->p[i] / s : S->p[i]);
    }
    B->cnt[n * hw + q] = (uint16_t)kept;
}

/* emit() for a footprint holding the single label c with total weight m (normalise for one class). */
static inline void emit_single(const Job *J, int64_t n, int64_t q, int64_t c, double m) {
    const int64_t hw = J->h * J->w;
    double total = J->clamp ? (m < 0 ? 0.0 : (m > 1 ? 1.0 : m)) : m;
    int keep = c != J->ignore && total > VALID_EPS && m > 0;
    J->valid[n * hw + q] = keep ? (float)total : 0.0f;
    if (J->probs) {
        if (keep) J->probs[(n * J->C + c) * hw + q] = 1.0f;
        return;
    }
    SparseBuf *B = J->sp;
    if (!keep) return;
    if (B->used >= B->cap && !sp_reserve(B, 1)) return;
    B->cls[B->used] = (int32_t)c;
    B->wt[B->used++] = 1.0f;
    B->cnt[n * hw + q] = 1;
    if (B->max_count < 1) B->max_count = 1;
}

#define DEFINE_KERNEL(T, NAME)                                                               \
static void run_##NAME(const Job *J, Scratch *S, const T *lab) {                             \
    const int64_t Ky = J->Ky, Kx = J->Kx, W = J->W, C = J->C, hw = J->h * J->w;              \
    const T *rows[Ky > 0 ? Ky : 1];                                                          \
    for (int64_t n = 0; n < J->N; n++) {                                                     \
        const T *img = lab + n * J->H * W;                                                   \
        for (int64_t y = 0; y < J->h; y++) {                                                 \
            const double *wyr = J->wy + y * Ky;                                              \
            for (int64_t k = 0; k < Ky; k++) rows[k] = img + J->iy[y * Ky + k] * W;          \
            for (int64_t x = 0; x < J->w; x++) {                                             \
                const int64_t q = y * J->w + x;                                              \
                const int64_t *ixr = J->ix + x * Kx;                                         \
                const double *wxr = J->wx + x * Kx;                                          \
                if (S->wrow[y] == 0.0 || S->wcol[x] == 0.0) {                                \
                    J->valid[n * hw + q] = 0.0f;                                             \
                    if (J->sp) emit(J, S, n, q, 0);                                          \
                    continue;                                                                \
                }                                                                            \
                const T l0 = rows[0][ixr[0]];                                                \
                int diff = 0;                                                                \
                if (S->contig[x] && sizeof(T) == 1) {                                        \
                    for (int64_t k = 0; k < Ky && !diff; k++)                                \
                        diff = bytes_differ((const uint8_t *)(rows[k] + ixr[0]), Kx, (uint8_t)l0); \
                } else if (S->contig[x]) {                                                   \
                    for (int64_t k = 0; k < Ky && !diff; k++) {                              \
                        const T *r = rows[k] + ixr[0];                                       \
                        for (int64_t j = 0; j < Kx; j++) diff |= (r[j] != l0);               \
                    }                                                                        \
                } else {                                                                     \
                    for (int64_t k = 0; k < Ky && !diff; k++) {                              \
                        const T *r = rows[k];                                                \
                        for (int64_t j = 0; j < Kx; j++) diff |= (r[ixr[j]] != l0);          \
                    }                                                                        \
                }                                                                            \
                int nl = 0;                                                                  \
                if (!diff) {                                                                 \
                    emit_single(J, n, q, (int64_t)l0, S->wrow[y] * S->wcol[x]);              \
                    continue;                                                                \
                }                                                                            \
                for (int64_t k = 0; k < Ky; k++) {                                           \
                    const double wk = wyr[k];                                                \
                    if (wk == 0.0) continue;                                                 \
                    const T *r = rows[k];                                                    \
                    for (int64_t j = 0; j < Kx; j++) {                                       \
                        const double wv = wk * wxr[j];                                       \
                        if (wv == 0.0) continue;                                             \
                        const int64_t v = (int64_t)r[ixr[j]];                                \
                        const int32_t c = (int32_t)(v == J->ignore ? C : v);                 \
                        S->list[nl] = c; nl += !S->mark[c]; S->mark[c] = 1;                  \
                        S->acc[c] += wv;                                                     \
                    }                                                                        \
                }                                                                            \
                /* move the ignore slot (if touched) to the end and leave it out */          \
                int nc = nl;                                                                 \
                for (int i = 0; i < nl; i++) {                                               \
                    if (S->list[i] == C) {                                                   \
                        S->list[i] = S->list[nl - 1]; S->list[nl - 1] = (int32_t)C; nc = nl - 1; \
                        break;                                                               \
                    }                                                                        \
                }                                                                            \
                emit(J, S, n, q, nc);                                                        \
                for (int i = 0; i < nl; i++) { S->acc[S->list[i]] = 0.0; S->mark[S->list[i]] = 0; } \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
}

/* 1 if a label is outside [0, C) and not the ignore value (uint8 has its own faster check). */
#define DEFINE_CHECK(T, NAME)                                                                \
static int any_bad_##NAME(const T *lab, int64_t n, int64_t C, int64_t ignore) {              \
    int bad = 0;                                                                             \
    for (int64_t i = 0; i < n; i++) {                                                        \
        const int64_t v = (int64_t)lab[i];                                                   \
        bad |= ((v < 0) | (v >= C)) & (v != ignore);                                         \
    }                                                                                        \
    return bad;                                                                              \
}

DEFINE_KERNEL(uint8_t, u8)
DEFINE_KERNEL(int8_t, i8)
DEFINE_KERNEL(int16_t, i16)
DEFINE_KERNEL(int32_t, i32)
DEFINE_KERNEL(int64_t, i64)
DEFINE_CHECK(int8_t, i8)
DEFINE_CHECK(int16_t, i16)
DEFINE_CHECK(int32_t, i32)
DEFINE_CHECK(int64_t, i64)

/* uint8 fast check: values below C or equal to ignore are fine. */
static int any_bad_u8_fast(const uint8_t *lab, int64_t n, int64_t C, int64_t ignore) {
    if (C >= 256) return 0;
    const uint8_t c = (uint8_t)C;
    const int has_ign = ignore >= 0 && ignore < 256;
    const uint8_t ig = (uint8_t)(has_ign ? ignore : 0);
    uint8_t bad = 0;
    if (has_ign) {
        for (int64_t i = 0; i < n; i++) bad |= (uint8_t)((lab[i] >= c) & (lab[i] != ig));
    } else {
        for (int64_t i = 0; i < n; i++) bad |= (uint8_t)(lab[i] >= c);
    }
    return bad != 0;
}

/* dtype: 0 uint8, 1 int8, 2 int16, 3 int32, 4 int64. Returns 1 if a label is outside [0, C)
   and not the ignore value. */
int any_bad(const void *lab, int dtype, int64_t n, int64_t C, int64_t ignore) {
    switch (dtype) {
        case 0: return any_bad_u8_fast((const uint8_t *)lab, n, C, ignore);
        case 1: return any_bad_i8((const int8_t *)lab, n, C, ignore);
        case 2: return any_bad_i16((const int16_t *)lab, n, C, ignore);
        case 3: return any_bad_i32((const int32_t *)lab, n, C, ignore);
        default: return any_bad_i64((const int64_t *)lab, n, C, ignore);
    }
}

/* Returns 0 on success, -1 when scratch memory could not be allocated. */
int soft_resize(const void *lab, int dtype, int64_t N, int64_t H, int64_t W,
                const int64_t *iy, const double *wy, int64_t h, int64_t Ky,
                const int64_t *ix, const double *wx, int64_t w, int64_t Kx,
                int64_t C, int64_t ignore, int clamp, int64_t top_k,
                float *probs, float *valid, SparseBuf *sp) {
    Job J = {N, H, W, h, w, Ky, Kx, C, ignore, top_k, iy, ix, wy, wx, clamp, probs, valid, sp};
    Scratch S;
    S.acc = (double *)calloc(C + 1, sizeof(double));
    S.mark = (uint8_t *)calloc(C + 1, 1);
    S.list = (int32_t *)malloc((C + 2) * sizeof(int32_t));  /* +1: the branchless append writes one past */
    S.ord = (int32_t *)malloc((C + 1) * sizeof(int32_t));
    S.p = (double *)malloc((C + 1) * sizeof(double));
    S.wrow = (double *)malloc((h > 0 ? h : 1) * sizeof(double));
    S.wcol = (double *)malloc((w > 0 ? w : 1) * sizeof(double));
    S.contig = (uint8_t *)malloc(w > 0 ? w : 1);
    int rc = 0;
    if (!S.acc || !S.mark || !S.list || !S.ord || !S.p || !S.wrow || !S.wcol || !S.contig) {
        rc = -1;
    } else {
        for (int64_t y = 0; y < h; y++) {
            double s = 0.0;
            for (int64_t k = 0; k < Ky; k++) s += wy[y * Ky + k];
            S.wrow[y] = s;
        }
        for (int64_t x = 0; x < w; x++) {
            double s = 0.0;
            for (int64_t k = 0; k < Kx; k++) s += wx[x * Kx + k];
            S.wcol[x] = s;
            int c = 1;
            for (int64_t k = 1; k < Kx; k++) c &= ix[x * Kx + k] == ix[x * Kx] + k;
            S.contig[x] = (uint8_t)c;
        }
        advise_huge(valid, (size_t)(N * h * w) * sizeof(float));
        if (probs) {
            advise_huge(probs, (size_t)(N * C * h * w) * sizeof(float));
            memset(probs, 0, (size_t)(N * C * h * w) * sizeof(float));
        }
        switch (dtype) {
            case 0: run_u8(&J, &S, (const uint8_t *)lab); break;
            case 1: run_i8(&J, &S, (const int8_t *)lab); break;
            case 2: run_i16(&J, &S, (const int16_t *)lab); break;
            case 3: run_i32(&J, &S, (const int32_t *)lab); break;
            default: run_i64(&J, &S, (const int64_t *)lab); break;
        }
    }
    free(S.acc); free(S.mark); free(S.list); free(S.ord); free(S.p);
    free(S.wrow); free(S.wcol); free(S.contig);
    return rc;
}
