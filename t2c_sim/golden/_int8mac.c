/* Exact 8-bit MAC layers for the golden model (SPEC sections 2 and 6): GEMM + bias + wrap + requantize.
 *
 * Compiled on first use by t2c_sim/golden/native.py (cc -O3 -march=native) and called through ctypes
 * from t2c_sim/golden/int8mac.py, which checks every precondition below before calling.
 *
 * Operands. Activations are unsigned bytes u[p, k] = x[p, k] + XOFF (XOFF = 2^(a_bits-1) for signed x,
 * 0 for unsigned x; at most 8 bits), weights signed bytes w[c, k] in [-128, 127]. The GEMM reads the
 * activations through offsets (an implicit im2col): u[p, (t, c)] = a[offp[p] + offt[t] + c], so a conv
 * is KH*KW shifted reads of one padded channel-last input and a linear layer is T = 1. The reduction
 * runs over T taps times CQ channels (CQ = C_gp rounded up to a multiple of 4; the packed weights of
 * channels C_gp..CQ-1 are 0, so whatever bytes are read there contribute 0).
 *
 * Exactness. VPDPBUSD adds four products u*w (each |u*w| <= 255*128) to a 32-bit lane with wraparound,
 * so every lane holds D = sum_k u[p,k] * w[c,k] mod 2^32, exactly, in any order. With
 * badj[c] = wrap(bias_eff[c], ACC_BITS) - XOFF * sum_k w[c,k] (exact int64, computed by the caller):
 *   s = D + badj[c]  ==  bias_eff[c] + sum_k x[p,k] * w[c,k]   (mod 2^32)
 * so for ACC_BITS <= 32 the ACC_BITS-bit wrap of s is the SPEC accumulator (2^ACC_BITS divides 2^32).
 * For ACC_BITS > 32 the caller only calls when K * 255 * 128 < 2^31, where D is exact.
 *
 * Requantize (same formulas as numerics._round_shift_biased, valid because the caller checked
 * numerics.requantize's int64 fast-path bounds: |acc*M0| + 2^(sh-1) and (|acc*M0| >> sh) + |z_y| fit
 * int64): t = acc * M0; h = 2^(sh-1) (0 for sh = 0); nz = -1 if sh > 0 else 0;
 *   floor: t >> sh; half_up: (t + h) >> sh; half_even: (t + h + nz + ((t >> sh) & 1 & nz)) >> sh;
 *   half_away: (t + h + ((t >> 63) & nz)) >> sh;   y = clamp(z_y + that, lo, hi).
 * Right shifts of negative int64 are arithmetic (GCC and Clang define it; -fwrapv is passed too).
 */
#include <stdint.h>
#include <string.h>

int t2c_int8mac_abi(void) { return 4; }

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__)
#include <immintrin.h>

int t2c_int8mac_has_vnni(void) { return 1; }

#define MR 6 /* rows per micro-kernel: MR x NR accumulators of 16 lanes stay in zmm registers */

/* Pack the weights of one group: w[o, t*cgp + c] (int64, row stride ldw, o < cog) into
 * out[q][t][c4][j][4] (int8) for panels q0 <= q < q1 of nrw = 16*NR channels, channel o = q*nrw + j,
 * c = 4*c4 + (last index). Missing channels (o >= cog) and channels c >= cgp are 0. colsum[o] gets
 * sum_k w[o, k]; mnmx[0], mnmx[1] the min and max weight seen (the caller rejects non-int8 weights). */
void t2c_pack(const int64_t *w, int64_t ldw, int64_t cog, int64_t T, int64_t cgp, int64_t cq,
              int64_t nrw, int64_t q0, int64_t q1, int8_t *out, int64_t *colsum, int64_t *mnmx) {
    const int64_t c4n = cq / 4, stride = nrw * 4; /* bytes between consecutive c4 of one channel */
    const int64_t panel = T * c4n * stride;
    __m256i vmn = _mm256_set1_epi64x(INT64_MAX), vmx = _mm256_set1_epi64x(INT64_MIN);
    for (int64_t q = q0; q < q1; q++) {
        int8_t *dq = out + q * panel;
        for (int64_t jb = 0; jb < nrw; jb += 16) {
            const int64_t o0 = q * nrw + jb;
            const int64_t nvj = cog - o0 < 0 ? 0 : (cog - o0 > 16 ? 16 : cog - o0);
            if (nvj == 16 && cgp == cq) {
                /* 16 whole channels, whole groups of 4: one 64-byte line per (t, c4) */
                __m256i vs[16];
                for (int jj = 0; jj < 16; jj++) vs[jj] = _mm256_setzero_si256();
                for (int64_t t = 0; t < T; t++) {
                    for (int64_t c4 = 0; c4 < c4n; c4++) {
                        int32_t line[16] __attribute__((aligned(64)));
                        for (int jj = 0; jj < 16; jj++) {
                            const __m256i v = _mm256_loadu_si256(
                                (const void *)(w + (o0 + jj) * ldw + t * cgp + 4 * c4));
                            vmn = _mm256_min_epi64(vmn, v);
                            vmx = _mm256_max_epi64(vmx, v);
                            vs[jj] = _mm256_add_epi64(vs[jj], v);
                            line[jj] = _mm_cvtsi128_si32(_mm256_cvtepi64_epi8(v));
                        }
                        _mm512_storeu_si512((void *)(dq + (t * c4n + c4) * stride + jb * 4),
                                            _mm512_load_si512((const void *)line));
                    }
                }
                for (int jj = 0; jj < 16; jj++) {
                    int64_t l[4];
                    _mm256_storeu_si256((void *)l, vs[jj]);
                    colsum[o0 + jj] = (int64_t)((uint64_t)l[0] + (uint64_t)l[1] + (uint64_t)l[2] + (uint64_t)l[3]);
                }
                continue;
            }
            /* general case: element by element, zeros for missing channels and padding */
            for (int64_t t = 0; t < T; t++)
                for (int64_t c4 = 0; c4 < c4n; c4++)
                    memset(dq + (t * c4n + c4) * stride + jb * 4, 0, 64);
            for (int64_t jj = 0; jj < nvj; jj++) {
                const int64_t *row = w + (o0 + jj) * ldw;
                uint64_t sum = 0;
                for (int64_t t = 0; t < T; t++) {
                    int8_t *dt = dq + t * c4n * stride + (jb + jj) * 4;
                    for (int64_t c = 0; c < cgp; c++) {
                        const int64_t v = row[t * cgp + c];
                        const __m256i vv = _mm256_set1_epi64x(v);
                        vmn = _mm256_min_epi64(vmn, vv);
                        vmx = _mm256_max_epi64(vmx, vv);
                        sum += (uint64_t)v;
                        dt[(c >> 2) * stride + (c & 3)] = (int8_t)v;
                    }
                }
                colsum[o0 + jj] = (int64_t)sum;
            }
        }
    }
    int64_t mn[4], mx[4];
    _mm256_storeu_si256((void *)mn, vmn);
    _mm256_storeu_si256((void *)mx, vmx);
    for (int i = 1; i < 4; i++) {
        mn[0] = mn[i] < mn[0] ? mn[i] : mn[0];
        mx[0] = mx[i] > mx[0] ? mx[i] : mx[0];
    }
    mnmx[0] = mn[0];
    mnmx[1] = mx[0];
}

static inline int32_t load_u32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Requantizer parameters of 8 channels (mask m): M0, sh, h = 2^(sh-1) (0 for sh = 0), badj. */
typedef struct {
    __m512i badj, m0, sv, h;
    __mmask8 nz; /* lanes with sh > 0 */
} rqp_t;

static inline rqp_t rq_params(const int64_t *badj, const int64_t *m0, const int64_t *shv, __mmask8 m) {
    rqp_t r;
    r.badj = _mm512_maskz_loadu_epi64(m, badj);
    r.m0 = _mm512_maskz_loadu_epi64(m, m0);
    r.sv = _mm512_maskz_loadu_epi64(m, shv);
    r.nz = _mm512_cmpgt_epi64_mask(r.sv, _mm512_setzero_si512());
    r.h = _mm512_srli_epi64(_mm512_sllv_epi64(_mm512_set1_epi64(1), r.sv), 1);
    return r;
}

static inline void store8(int64_t *p, __m512i v, __mmask8 m, int stream) {
    if (stream && m == 0xFF && !((uintptr_t)p & 63))
        _mm512_stream_si512((void *)p, v); /* large outputs: no read-for-ownership */
    else
        _mm512_mask_storeu_epi64(p, m, v);
}

/* Epilogue of 8 lanes: d (int32 dot, mod 2^32) -> acc = wrap(d + badj, ACC_BITS) and y. */
static inline void epi8(__m256i d, const rqp_t *r, __m128i up, __m512i z, __m512i lo, __m512i hi,
                        int mode, __mmask8 m, int stream, int64_t *ao, int64_t *yo) {
    const __m512i one = _mm512_set1_epi64(1);
    const __m512i s = _mm512_add_epi64(_mm512_cvtepi32_epi64(d), r->badj);
    const __m512i a = _mm512_sra_epi64(_mm512_sll_epi64(s, up), up);   /* ACC_BITS-bit wrap */
    store8(ao, a, m, stream);
    __m512i t = _mm512_mullo_epi64(a, r->m0);
    switch (mode) {
    case 0: { /* half_even: (t + h - 1 + (q & 1)) >> sh where sh > 0, q = t >> sh */
        const __m512i odd = _mm512_maskz_and_epi64(r->nz, _mm512_srav_epi64(t, r->sv), one);
        const __m512i th = _mm512_add_epi64(t, r->h);
        t = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mask_sub_epi64(th, r->nz, th, one), odd), r->sv);
        break;
    }
    case 1: /* half_up: (t + h) >> sh */
        t = _mm512_srav_epi64(_mm512_add_epi64(t, r->h), r->sv);
        break;
    case 2: { /* half_away: (t + h - 1) >> sh for t < 0 and sh > 0, else (t + h) >> sh */
        const __mmask8 neg = r->nz & _mm512_cmplt_epi64_mask(t, _mm512_setzero_si512());
        const __m512i th = _mm512_add_epi64(t, r->h);
        t = _mm512_srav_epi64(_mm512_mask_sub_epi64(th, neg, th, one), r->sv);
        break;
    }
    default: /* floor */
        t = _mm512_srav_epi64(t, r->sv);
        break;
    }
    store8(yo, _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(t, z), lo), hi), m, stream);
}

typedef struct {
    const uint8_t *a;      /* activation bytes (group base already added) */
    const int64_t *offp;   /* [P] row offsets into a */
    const int64_t *offt;   /* [T] tap offsets */
    int64_t T, cq;         /* taps, channels per tap (multiple of 4) */
    const int8_t *wp;      /* packed weights of this group */
    int64_t nrw, cog;      /* panel width (16*NR), channels of this group */
    int64_t np;            /* end of this call's rows (<= P) */
    const int64_t *badj, *m0, *shv; /* parameters, already offset to this group's first channel */
    int64_t par_ld;        /* row stride of the parameters: 0 per channel, C_out token-wise */
    int64_t acc_bits, z, lo, hi;
    int mode, stream;      /* rounding mode code; 1 = non-temporal stores for whole lines */
    int64_t *acc_out, *y_out; /* outputs, already offset to this group's first channel */
    int64_t ldo;           /* output row stride (C_out) */
} job_t;

#define T2C_KERNEL(NR)                                                                       \
static void block_##NR(const job_t *jb, int64_t p0, int64_t q) {                             \
    __m512i acc[MR][NR];                                                                     \
    const uint8_t *rp[MR];                                                                   \
    const int64_t nv = (jb->np - p0) < MR ? (jb->np - p0) : MR;                              \
    for (int i = 0; i < MR; i++) {                                                           \
        rp[i] = jb->a + jb->offp[p0 + (i < nv ? i : nv - 1)];                                \
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_si512();                     \
    }                                                                                        \
    const int64_t c4n = jb->cq / 4;                                                          \
    const int8_t *wq = jb->wp + q * jb->T * c4n * (NR * 64);                                 \
    for (int64_t t = 0; t < jb->T; t++) {                                                    \
        const int64_t ot = jb->offt[t];                                                      \
        const uint8_t *ap[MR];                                                               \
        for (int i = 0; i < MR; i++) ap[i] = rp[i] + ot;                                     \
        for (int64_t c4 = 0; c4 < c4n; c4++, wq += NR * 64) {                                \
            __m512i wv[NR];                                                                  \
            for (int j = 0; j < NR; j++) wv[j] = _mm512_loadu_si512((const void *)(wq + 64 * j)); \
            for (int i = 0; i < MR; i++) {                                                   \
                const __m512i xb = _mm512_set1_epi32(load_u32(ap[i] + 4 * c4));              \
                for (int j = 0; j < NR; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xb, wv[j]); \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    const int64_t c0 = q * (NR * 16);                                                        \
    const int64_t nc = (jb->cog - c0) < (NR * 16) ? (jb->cog - c0) : (NR * 16);              \
    const __m128i up = _mm_cvtsi64_si128(64 - jb->acc_bits);                                 \
    const __m512i z = _mm512_set1_epi64(jb->z), lo = _mm512_set1_epi64(jb->lo);              \
    const __m512i hi = _mm512_set1_epi64(jb->hi);                                            \
    for (int j = 0; j < 2 * NR; j++) { /* 8 channels at a time, parameters loaded once */     \
        const int64_t e = c0 + 8 * j, left = nc - 8 * j;                                     \
        if (left <= 0) break;                                                                \
        const __mmask8 m = left >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1u);      \
        rqp_t r = rq_params(jb->badj + p0 * jb->par_ld + e, jb->m0 + p0 * jb->par_ld + e,    \
                            jb->shv + p0 * jb->par_ld + e, m);                               \
        for (int i = 0; i < MR; i++) {                                                       \
            if (i >= nv) break;                                                              \
            const int64_t p = p0 + i, po = p * jb->par_ld + e, oo = p * jb->ldo + e;         \
            if (jb->par_ld && i) r = rq_params(jb->badj + po, jb->m0 + po, jb->shv + po, m); \
            const __m256i d = (j & 1) ? _mm512_extracti64x4_epi64(acc[i][j / 2], 1)          \
                                      : _mm512_castsi512_si256(acc[i][j / 2]);               \
            epi8(d, &r, up, z, lo, hi, jb->mode, m, jb->stream, jb->acc_out + oo,            \
                 jb->y_out + oo);                                                            \
        }                                                                                    \
    }                                                                                        \
}

T2C_KERNEL(1)
T2C_KERNEL(2)
T2C_KERNEL(3)
T2C_KERNEL(4)

/* Rows p0 <= p < p1 (in blocks of MR) times panels q0 <= q < q1 of one group. Panels outer, so a
 * panel's weights stay in cache while the activation rows stream past. Returns 0, or -1 for a bad NR. */
int t2c_mac(const uint8_t *a, const int64_t *offp, const int64_t *offt, int64_t T, int64_t cq,
            const int8_t *wp, int64_t nrw, int64_t cog, int64_t np, const int64_t *badj,
            const int64_t *m0, const int64_t *shv, int64_t par_ld, int64_t acc_bits, int64_t z,
            int64_t lo, int64_t hi, int64_t mode, int64_t stream, int64_t *acc_out, int64_t *y_out,
            int64_t ldo, int64_t p0, int64_t p1, int64_t q0, int64_t q1) {
    if (p1 > np) p1 = np;
    const job_t jb = {a, offp, offt, T, cq, wp, nrw, cog, p1, badj, m0, shv, par_ld,
                      acc_bits, z, lo, hi, (int)mode, (int)stream, acc_out, y_out, ldo};
    void (*blk)(const job_t *, int64_t, int64_t);
    switch (nrw) {
    case 16: blk = block_1; break;
    case 32: blk = block_2; break;
    case 48: blk = block_3; break;
    case 64: blk = block_4; break;
    default: return -1;
    }
    for (int64_t q = q0; q < q1; q++)
        for (int64_t p = p0; p < p1; p += MR) blk(&jb, p, q);
    _mm_sfence(); /* non-temporal stores are visible before the caller is told we are done */
    return 0;
}

#else /* no AVX-512 VNNI: the library still loads, and says so; the caller uses the NumPy path */
int t2c_int8mac_has_vnni(void) { return 0; }
#endif
