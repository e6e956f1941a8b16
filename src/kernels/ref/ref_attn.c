/*
 * ref_attn.c: the reference attention block (the spec of mn_kernels.attn_block, see kernels.h).
 * One KV block of positions updates the online-softmax state of G query heads that share a KV
 * head: scores s_t = scale * (q_h . k_t), then with m' = max(m_h, max_t s_t) and c = e^(m_h - m'):
 * l_h = l_h c + sum_t e^(s_t - m'), acc_h = acc_h c + sum_t e^(s_t - m') v_t, m_h = m'.
 */
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"
#include "kernels/types.h"

static void attn_block(int32_t kv_type, int hd, int G, int n_t, const float *q, const void *k, const void *v,
                       size_t row, float scale, float *m, float *l, float *acc) {
    const mn_type_traits *tt = mn_type_get(kv_type);
    float kf[MN_ATTN_HD_MAX], sc[MN_ATTN_BLOCK_MAX];
    for (int h = 0; h < G; h++) {
        const float *qh = q + (size_t)h * hd;
        float *ah = acc + (size_t)h * hd;
        float bmx = -INFINITY;
        for (int t = 0; t < n_t; t++) {
            tt->to_f32((const char *)k + (size_t)t * row, kf, hd);
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += kf[d] * qh[d];
            sc[t] = s * scale;
            if (sc[t] > bmx) bmx = sc[t];
        }
        if (bmx > m[h]) { /* rescale what was accumulated under the old max */
            const float c = expf(m[h] - bmx);
            for (int d = 0; d < hd; d++) ah[d] *= c;
            l[h] *= c;
            m[h] = bmx;
        }
        for (int t = 0; t < n_t; t++) {
            const float p = expf(sc[t] - m[h]);
            l[h] += p;
            tt->to_f32((const char *)v + (size_t)t * row, kf, hd);
            for (int d = 0; d < hd; d++) ah[d] += p * kf[d];
        }
    }
}

void mn_ref_attn_block_f32(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                           float scale, float *m, float *l, float *acc) {
    attn_block(MN_TYPE_F32, hd, G, n_t, q, k, v, row, scale, m, l, acc);
}

void mn_ref_attn_block_f16(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                           float scale, float *m, float *l, float *acc) {
    attn_block(MN_TYPE_F16, hd, G, n_t, q, k, v, row, scale, m, l, acc);
}
