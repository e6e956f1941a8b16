/*
 * minnow.h: the one public C API of minnow, a small-language-model engine.
 *
 * Shape of the API
 *   - Opaque handles: mn_model (weights, immutable after load), mn_context (KV cache + scratch for
 *     one stream of evaluation), mn_tokenizer (vocabulary), mn_sampler (a chain of sampling stages).
 *   - Every fallible call returns mn_status: MN_OK (0) or a negative MN_E* code. Calls on an existing
 *     handle leave a message in that handle (mn_context_errmsg); calls that create a handle take an
 *     optional mn_error* (may be NULL) that receives the message.
 *   - Ownership: whoever creates an object frees it; every *_free(NULL) is a no-op. Pointers returned
 *     by getters are borrowed and stay valid as long as the handle they came from, unless stated.
 *   - Threads: an mn_model and an mn_tokenizer are immutable after creation and may be used by any
 *     number of threads at once. An mn_context and an mn_sampler belong to one thread at a time
 *     (not thread-safe; the caller serialises). No call keeps mutable global state.
 */
#ifndef MINNOW_H
#define MINNOW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status codes -------------- */

/* X(name, value, default message). Values are stable and never reused. */
#define MN_STATUS_LIST(X)                                        \
    X(MN_OK, 0, "ok")                                            \
    X(MN_EINVAL, -1, "invalid argument")                         \
    X(MN_ENOMEM, -2, "out of memory")                            \
    X(MN_EIO, -3, "I/O error")                                   \
    X(MN_EBADFILE, -4, "malformed file")                         \
    X(MN_EUNSUPPORTED, -5, "unsupported")                        \
    X(MN_ERANGE, -6, "value out of range")                       \
    X(MN_ENOTFOUND, -7, "not found")                             \
    X(MN_ETOOBIG, -8, "input too large")                         \
    X(MN_EFULL, -9, "capacity exhausted")                        \
    X(MN_ECANCELLED, -10, "cancelled")                           \
    X(MN_EINTERNAL, -11, "internal error")

typedef enum mn_status {
#define MN_X_ENUM(name, value, msg) name = value,
    MN_STATUS_LIST(MN_X_ENUM)
#undef MN_X_ENUM
} mn_status;

/* Static description of a status code ("malformed file"). Never NULL. */
const char *mn_strerror(mn_status status);

/* Receives the detail of a failed create call. Caller-allocated; zero-init is fine. */
typedef struct mn_error {
    mn_status status;
    char message[512];
} mn_error;

/* Library version "MAJOR.MINOR.PATCH". */
const char *mn_version(void);

/* ---------------------------------------------------------------- model ---------------------- */

typedef struct mn_model mn_model;

typedef enum mn_weights_mode {
    MN_WEIGHTS_COPY = 0, /* default: copy matrices into anonymous memory backed by huge pages where the
                          * kernel allows (fewer TLB misses and page-bound prefetch stops while
                          * streaming weights), releasing the file mapping's pages */
    MN_WEIGHTS_MMAP = 1, /* compute straight from the file mapping (shared between processes) */
} mn_weights_mode;

typedef struct mn_model_params {
    int n_threads;        /* threads used for load-time work (repacking); <= 0: all cores */
    mn_weights_mode mode; /* where weights live while computing */
} mn_model_params;

mn_model_params mn_model_default_params(void);

/* Loads a GGUF model. The file is mmapped; matrices are copied or used in place (params->mode). On failure *out is NULL and err says why.
 * path: the .gguf file. params: may be NULL (defaults). out: OUT, owned by caller. */
mn_status mn_model_load(const char *path, const mn_model_params *params, mn_model **out, mn_error *err);
void mn_model_free(mn_model *model);

typedef struct mn_model_info {
    const char *arch;      /* "llama", "qwen2"; borrowed */
    const char *name;      /* general.name or "" ; borrowed */
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t n_ff;
    int64_t n_params;      /* parameter count */
    uint64_t weight_bytes; /* bytes of tensor data */
    uint64_t bytes_per_token; /* weight bytes one decode step streams (layer matrices + classifier) */
    int64_t flops_per_token;  /* 2 x multiply-adds of the matrix products per token (no attention) */
    int64_t flops_classifier; /* the classifier's part of flops_per_token (only for rows whose logits
                               * are asked for) */
    const char *type_name; /* most common weight type ("q8_0"); borrowed */
} mn_model_info;

void mn_model_get_info(const mn_model *model, mn_model_info *out);

/* The model's tokenizer, or NULL when the file carries no vocabulary. Borrowed. */
const struct mn_tokenizer *mn_model_tokenizer(const mn_model *model);

/* ---------------------------------------------------------------- context -------------------- */

typedef struct mn_context mn_context;

/* Element type of the KV cache. AUTO: f32 when the model's weights are f32 (reference precision),
 * else f16. Q8_0 needs a head dimension that is a multiple of 32. */
typedef enum mn_kv_type { MN_KV_AUTO = 0, MN_KV_F32 = 1, MN_KV_F16 = 2, MN_KV_Q8_0 = 3 } mn_kv_type;

typedef struct mn_context_params {
    int32_t n_ctx;        /* tokens of KV cache per sequence; <= 0: the model's training context */
    int32_t n_batch;      /* most tokens one mn_context_eval may take; <= 0: 512 */
    int32_t n_seq_max;    /* independent sequences sharing the context; <= 0: 1 */
    int32_t n_threads;    /* worker threads; <= 0: all cores */
    uint64_t mem_limit_mb;/* cap on KV cache memory (n_ctx is reduced to fit); 0: no cap */
    int32_t kv_type;      /* enum mn_kv_type */
} mn_context_params;

mn_context_params mn_context_default_params(void);

/* Creates a context over a loaded model. The model must outlive the context. */
mn_status mn_context_create(const mn_model *model, const mn_context_params *params, mn_context **out,
                            mn_error *err);
void mn_context_free(mn_context *ctx);

/* Message of the last failed call on ctx ("" if none). Borrowed, valid until the next call on ctx. */
const char *mn_context_errmsg(const mn_context *ctx);

/* Effective parameters (n_ctx after the memory cap). */
int32_t mn_context_n_ctx(const mn_context *ctx);
int32_t mn_context_n_batch(const mn_context *ctx);

/* A batch of tokens to evaluate in one forward pass. Arrays have n_tokens entries.
 * pos[i] is the position of tokens[i] in its sequence; positions of one sequence must continue
 * that sequence's cache (pos == current length) and be consecutive within the batch.
 * seq: sequence ids (NULL: all 0). logits: non-zero where logits are wanted (NULL: last token only). */
typedef struct mn_batch {
    int32_t n_tokens;
    const int32_t *tokens;
    const int32_t *pos;
    const int32_t *seq;
    const int8_t *logits;
} mn_batch;

/* Runs the model over the batch, appends its keys/values to the cache, and computes logits for the
 * tokens asked for. Errors: MN_EINVAL (bad token id, position, sequence, size), MN_EFULL (cache full). */
mn_status mn_context_eval(mn_context *ctx, const mn_batch *batch);

/* Logits (n_vocab floats) of the i-th token asked for in the last eval (0-based among those asked
 * for). NULL when i is out of range. Borrowed until the next eval. */
const float *mn_context_logits(const mn_context *ctx, int32_t i);

/* Runs fn(arg, i) for every i in [0, n) on the context's threads (the caller takes part) and
 * returns when all have run; for per-sequence work between evals, such as sampling each
 * sequence's logits with its own sampler, without a second set of threads competing for the cores.
 * fn must not call into ctx; calls for different i may run at the same time. */
void mn_context_parallel(mn_context *ctx, int32_t n, void (*fn)(void *arg, int32_t i), void *arg);

/* Forgets cached positions >= pos of sequence seq (pos 0: the whole sequence). */
mn_status mn_context_kv_truncate(mn_context *ctx, int32_t seq, int32_t pos);
/* Number of cached positions of sequence seq. */
int32_t mn_context_kv_len(const mn_context *ctx, int32_t seq);

/* Prefix cache. The KV cache is a pool of fixed-size blocks; full blocks are indexed by their
 * token content and everything before them. For an EMPTY sequence seq, attaches the longest run of
 * cached blocks matching tokens[0..n) and sets *n_cached to the number of leading tokens that need
 * no evaluation (always < n, so the last prompt token is evaluated and yields logits). The caller
 * then evaluates tokens[*n_cached..n) at positions *n_cached... */
mn_status mn_context_kv_attach_prefix(mn_context *ctx, int32_t seq, const int32_t *tokens, int32_t n,
                                      int32_t *n_cached);

typedef struct mn_kv_stats {
    int32_t block_size;   /* positions per block */
    int32_t n_blocks;     /* blocks in the pool */
    int32_t n_free;       /* blocks not used by any sequence (cached-but-idle ones count as free) */
    int32_t n_cached;     /* idle blocks kept for prefix reuse (evicted LRU when needed) */
    uint64_t bytes;       /* memory of the pool */
} mn_kv_stats;
void mn_context_kv_stats(const mn_context *ctx, mn_kv_stats *out);

/* ---------------------------------------------------------------- tokenizer ------------------ */

/* A vocabulary and its encoder: SentencePiece (tokenizer.ggml.model "llama") or byte-level BPE
 * ("gpt2", with the pre-tokenizer named by tokenizer.ggml.pre), reproducing llama.cpp's ids.
 * Immutable after load: any number of threads may encode and decode with one tokenizer at once. */
typedef struct mn_tokenizer mn_tokenizer;

/* Loads only the vocabulary of a GGUF file (weights not needed; the file is closed on return).
 * Errors: MN_ENOTFOUND (no file, or a file without tokenizer.ggml.model), MN_EUNSUPPORTED
 * (another tokenizer model or pre-tokenizer), MN_EBADFILE (malformed metadata: err names the key),
 * MN_ENOMEM. out: OUT, owned by caller, NULL on failure. err: may be NULL. */
mn_status mn_tokenizer_load(const char *path, mn_tokenizer **out, mn_error *err);
void mn_tokenizer_free(mn_tokenizer *tok);

enum {
    MN_TOKENIZE_ADD_BOS = 1 << 0,  /* prepend BOS when the vocabulary adds one */
    MN_TOKENIZE_PARSE_SPECIAL = 1 << 1, /* text like "<|im_start|>" becomes the special token */
    MN_TOKENIZE_ADD_EOS = 1 << 2,  /* append EOS when the vocabulary adds one (add_eos_token) */
};

/* Longest text one mn_tokenize call accepts (MN_ETOOBIG beyond): split bigger inputs. At this
 * size the worst case (one 4 MiB word of a single repeated character) takes seconds and ~150 MB;
 * ordinary text of this size takes about 0.1-0.2 s. */
#define MN_TOKENIZE_MAX_BYTES ((size_t)4 << 20)
/* No text of len bytes ever needs more ids than this (byte fallback of escaped spaces, plus
 * BOS/EOS): an out array this long never gets MN_EFULL. */
#define MN_TOKENIZE_MAX_TOKENS(len) (4 * (size_t)(len) + 8)

int32_t mn_tokenizer_n_vocab(const mn_tokenizer *tok);
int32_t mn_tokenizer_bos(const mn_tokenizer *tok); /* -1 when none */
int32_t mn_tokenizer_eos(const mn_tokenizer *tok); /* -1 when none */
/* Non-zero when generation should stop at id (EOS, EOT, EOM...). */
int mn_tokenizer_is_eog(const mn_tokenizer *tok, int32_t id);
/* The model's chat template (tokenizer.chat_template), NUL-terminated; NULL when the file has
 * none. Borrowed from tok. */
const char *mn_tokenizer_chat_template(const mn_tokenizer *tok);

/* Encodes text (len bytes, any bytes allowed) into ids. Writes at most cap ids to out and sets
 * *n_out to the number the text needs (so a call with cap 0 measures). MN_EFULL when cap was short.
 * Empty text gives no ids (only BOS/EOS if asked). Special tokens: tokens the vocabulary added as
 * user-defined (not control) are always recognised in the text; CONTROL tokens ("<|im_end|>",
 * "<s>") only with MN_TOKENIZE_PARSE_SPECIAL, otherwise their text is ordinary text.
 * Ill-formed UTF-8 never fails: SentencePiece encodes the raw bytes (byte fallback); byte-level
 * BPE encodes each ill-formed subpart as U+FFFD. Cost is O(len log len).
 * Errors: MN_EINVAL (NULL tok/n_out, NULL text with len > 0, NULL out with cap > 0, unknown flag
 * bits), MN_ETOOBIG (len > MN_TOKENIZE_MAX_BYTES), MN_EFULL, MN_ENOMEM. */
mn_status mn_tokenize(const mn_tokenizer *tok, const char *text, size_t len, int flags, int32_t *out,
                      size_t cap, size_t *n_out);

/* The bytes of one token (byte tokens decoded, SentencePiece "▁" as space). Special tokens give
 * their text only when show_special. Writes at most cap bytes, sets *n_out to the full length.
 * MN_EINVAL for an id outside [0, n_vocab); MN_EFULL when cap was short. */
mn_status mn_token_to_piece(const mn_tokenizer *tok, int32_t id, int show_special, char *buf,
                            size_t cap, size_t *n_out);

enum {
    MN_DETOK_SPECIAL = 1 << 0,     /* control/unknown tokens give their text ("<s>") */
    MN_DETOK_STRIP_SPACE = 1 << 1, /* ids start a sequence: drop the space a SentencePiece
                                      vocabulary prefixed (one leading space of the first piece) */
};

/* Decodes ids into the bytes they stand for (the concatenated pieces; may be ill-formed UTF-8
 * when the ids split a character, use mn_detok for text that must be valid). Writes at most cap
 * bytes and sets *n_out to the full length. flags: MN_DETOK_*. Errors: MN_EINVAL (an id out of
 * range, bad arguments; nothing written), MN_EFULL. Round trips, for text encoded without
 * MN_TOKENIZE_PARSE_SPECIAL: SentencePiece gives back any bytes exactly (with
 * MN_DETOK_STRIP_SPACE), except that "▁" (U+2581) in the text comes back as a space; byte-level
 * BPE gives back valid UTF-8 exactly, and ill-formed UTF-8 with each bad subpart as U+FFFD. */
mn_status mn_detokenize(const mn_tokenizer *tok, const int32_t *ids, size_t n_ids, int flags, char *buf,
                        size_t cap, size_t *n_out);

/* Streaming detokenizer: turns ids, one at a time, into text that is always valid UTF-8. A
 * character split across tokens is held back until complete; ill-formed bytes become U+FFFD; an
 * incomplete sequence still held at mn_detok_flush becomes one U+FFFD. The tokenizer must outlive
 * it. One thread at a time. Pushing never allocates. */
typedef struct mn_detok mn_detok;

/* flags: MN_DETOK_*. out: OUT, owned by caller. MN_EINVAL, MN_ENOMEM. */
mn_status mn_detok_create(const mn_tokenizer *tok, int flags, mn_detok **out);
void mn_detok_free(mn_detok *d);
/* Adds one token; text and len get the bytes now ready (possibly none), borrowed: valid until
 * the next call on d. MN_EINVAL for an id out of range (d unchanged). */
mn_status mn_detok_push(mn_detok *d, int32_t id, const char **text, size_t *len);
/* Ends the stream: returns what was held back (as U+FFFD). d can go on being used. */
mn_status mn_detok_flush(mn_detok *d, const char **text, size_t *len);
/* Forgets held bytes and starts a new sequence (MN_DETOK_STRIP_SPACE applies again). */
void mn_detok_reset(mn_detok *d);

/* ---------------------------------------------------------------- chat templates ------------- */

/* A chat template turns a conversation into the prompt text a model was trained on. minnow renders
 * the model's own template (tokenizer.chat_template: a Jinja template, as in HF
 * tokenizer_config.json) with a built-in interpreter for the Jinja subset chat templates use, run
 * the way HF transformers runs them (trim_blocks, lstrip_blocks, break/continue, raise_exception,
 * strftime_now, namespace, tojson with ensure_ascii off). The variables bound are messages,
 * add_generation_prompt, bos_token, eos_token, tools (none when absent), documents (none), plus
 * any from mn_chat_params.vars_json. A template cannot reach host code, and every render is
 * bounded in steps, nesting, memory and output (the limits below); a template that loops forever
 * or explodes fails with an error instead of hanging. */

/* One message. Zero-initialise it: fields added in later versions are then NULL (absent). */
typedef struct mn_chat_message {
    const char *role;              /* "system", "user", "assistant", "tool"...; required */
    const char *content;           /* UTF-8 text; NULL: message.content is none (e.g. an
                                      assistant turn that only calls tools) */
    const char *tool_calls_json;   /* NULL (absent) or a JSON array: message.tool_calls
                                      (OpenAI shape: [{"type":"function","function":{...}}]) */
    const char *tool_call_id;      /* NULL (absent) or message.tool_call_id (tool results) */
    const char *name;              /* NULL (absent) or message.name */
    const char *reasoning_content; /* NULL (absent) or message.reasoning_content */
} mn_chat_message;

typedef struct mn_chat_params {
    int add_generation_prompt; /* non-zero: end with the opening of an assistant turn. default 1 */
    const char *bos_token;     /* bound to bos_token; NULL: "". default NULL */
    const char *eos_token;     /* bound to eos_token; NULL: "". default NULL */
    const char *tools_json;    /* NULL (tools is none) or a JSON array of tool definitions */
    const char *vars_json;     /* NULL or a JSON object whose members become template variables
                                  (date_string, enable_thinking...), overriding the above */
    int64_t now;               /* seconds since the epoch that strftime_now formats in local time;
                                  0: the current time. default 0 */
    uint64_t n_steps_max;      /* evaluation steps (1 per node evaluated, 1 per 64 bytes of text
                                  built); 0: default MN_CHAT_STEPS_DEFAULT */
    uint32_t depth_max;        /* nesting of evaluation (expressions, blocks, macro calls), at most
                                  4096; 0: default MN_CHAT_DEPTH_DEFAULT */
    size_t out_bytes_max;      /* bytes of output (and of any one string); 0: default
                                  MN_CHAT_OUT_BYTES_DEFAULT */
    size_t mem_bytes_max;      /* bytes a render may allocate; 0: default MN_CHAT_MEM_BYTES_DEFAULT */
} mn_chat_params;

#define MN_CHAT_STEPS_DEFAULT 4000000u /* spent in <= ~40 ms; 1000 messages take 50k-100k steps */
#define MN_CHAT_DEPTH_DEFAULT 256u
#define MN_CHAT_OUT_BYTES_DEFAULT ((size_t)16 << 20)
#define MN_CHAT_MEM_BYTES_DEFAULT ((size_t)256 << 20)
#define MN_CHAT_TEMPLATE_BYTES_MAX ((size_t)1 << 20) /* longer templates are refused */
#define MN_CHAT_MESSAGES_MAX ((size_t)1 << 20)

mn_chat_params mn_chat_default_params(void);

/* A parsed template: immutable, so one may be rendered by any number of threads at once. */
typedef struct mn_chat_template mn_chat_template;

/* Parses a template. src NULL or "": the ChatML template (mn_chat_template_chatml), and, when err
 * is non-NULL, err->status MN_OK with a warning in err->message ("" otherwise on success).
 * Errors: MN_EINVAL (syntax error, with line and column), MN_EUNSUPPORTED (a Jinja feature this
 * interpreter lacks: an unknown-here filter, tag or extension), MN_ETOOBIG (longer than
 * MN_CHAT_TEMPLATE_BYTES_MAX), MN_EFULL (nested too deeply), MN_ENOMEM.
 * out: OUT, owned by caller (mn_chat_template_free). err: may be NULL. */
mn_status mn_chat_template_create(const char *src, mn_chat_template **out, mn_error *err);
void mn_chat_template_free(mn_chat_template *t);
/* Non-zero when t is the ChatML fallback (created from NULL or ""). */
int mn_chat_template_is_fallback(const mn_chat_template *t);
/* The ChatML template used when a model has none. Static storage. */
const char *mn_chat_template_chatml(void);

/* Renders msgs[0..n_msgs) (msgs may be NULL when n_msgs is 0). params: may be NULL (defaults).
 * out: OUT, malloc'd and NUL-terminated, owned by caller (free()); NULL on failure. out_len: OUT,
 * may be NULL. err: may be NULL; on success it holds "" or a warning (ChatML fallback).
 * Errors: MN_EINVAL (a message without role, invalid JSON in a field, a template runtime error
 * such as raise_exception("...") whose text the message carries, with line and column),
 * MN_EUNSUPPORTED, MN_EFULL (step, nesting or memory budget), MN_ETOOBIG (output budget),
 * MN_ENOMEM. Thread-safe for distinct out pointers. */
mn_status mn_chat_template_render(const mn_chat_template *t, const mn_chat_message *msgs, size_t n_msgs,
                                  const mn_chat_params *params, char **out, size_t *out_len, mn_error *err);

/* mn_chat_template_create + render + free in one call (tmpl NULL or "": ChatML with a warning). */
mn_status mn_chat_render(const char *tmpl, const mn_chat_message *msgs, size_t n_msgs,
                         const mn_chat_params *params, char **out, size_t *out_len, mn_error *err);

/* ---------------------------------------------------------------- sampler -------------------- */

typedef struct mn_sampler mn_sampler;

/* The chain runs in this order: logit hook, logit bias, penalties, top-k, top-p, min-p,
 * temperature, then a draw (or argmax when temperature <= 0). A stage is off at its neutral value
 * and is then not part of the chain at all. Top-p and min-p see the distribution at temperature 1
 * (temperature comes last, as in llama.cpp).
 * Logits: NaN counts as -Inf; a -Inf token is impossible and never picked; +Inf tokens share all
 * the probability equally. If no token is possible, mn_sampler_sample returns 0 (the argmax when
 * ties go to the lowest id) and mn_sampler_last reports n_possible 0. */
typedef struct mn_sampler_params {
    float temperature;       /* finite; <= 0 (negative included): greedy argmax, which skips top-k,
                                top-p and min-p (penalties, bias and hook still apply). default 0.8 */
    int32_t top_k;           /* >= 0; 0: off; > n_vocab acts as n_vocab. default 40 */
    float top_p;             /* in (0, 1]; 1: off. default 0.95 */
    float min_p;             /* in [0, 1]: keep tokens with p >= min_p * p_max; 0: off. default 0.05 */
    float repeat_penalty;    /* > 0, finite; 1: off. Seen tokens: logit > 0 ? logit / r : logit * r
                                (CTRL, llama.cpp). default 1.0 */
    int32_t penalty_last_n;  /* in [0, MN_SAMPLER_HISTORY_MAX]: accepted tokens the penalties see;
                                0: penalties off. default 64 */
    float frequency_penalty; /* in [-2, 2] (OpenAI): logit -= count * f; 0: off */
    float presence_penalty;  /* in [-2, 2] (OpenAI): logit -= (count > 0) * p; 0: off */
    uint64_t seed;           /* any value, no "random" sentinel (pick one yourself for variety);
                                same seed + same inputs = same draws. default 0 */
    int32_t n_probs;         /* in [0, MN_SAMPLER_N_PROBS_MAX]; > n_vocab acts as n_vocab. When > 0,
                                each sample also records log-probabilities (mn_sampler_last). default 0 */
} mn_sampler_params;

#define MN_SAMPLER_VOCAB_MAX (1 << 24)
#define MN_SAMPLER_HISTORY_MAX (1 << 20)
#define MN_SAMPLER_N_PROBS_MAX 256

mn_sampler_params mn_sampler_default_params(void);

/* Validates params (NaN, Inf, out of range: MN_EINVAL with a message naming the field, e.g.
 * "top_p must be in (0, 1], got nan") and preallocates everything a sample needs, so sampling
 * never allocates. params: may be NULL (defaults). n_vocab: in [1, MN_SAMPLER_VOCAB_MAX].
 * out: OUT, owned by caller, NULL on failure. err: may be NULL. */
mn_status mn_sampler_create(const mn_sampler_params *params, int32_t n_vocab, mn_sampler **out,
                            mn_error *err);
void mn_sampler_free(mn_sampler *s);
/* Picks a token from n_vocab logits (not modified). Returns an id in [0, n_vocab); -1 only when s
 * or logits is NULL. Advances the sampler's own PRNG (greedy does not draw). */
int32_t mn_sampler_sample(mn_sampler *s, const float *logits);
/* Records a token in the penalty history (prompt tokens and generated ones); the history keeps the
 * last penalty_last_n. Ids outside [0, n_vocab) are ignored. No-op when the penalties are off. */
void mn_sampler_accept(mn_sampler *s, int32_t token);
/* Clears history and the last-sample record, and reseeds with params.seed. Bias and hook stay. */
void mn_sampler_reset(mn_sampler *s);

/* Message of the last failed call on s ("" if none). Borrowed, valid until the next call on s. */
const char *mn_sampler_errmsg(const mn_sampler *s);

/* One token's log-probability. */
typedef struct mn_token_logprob {
    int32_t id;
    float logprob; /* natural log; -INFINITY for an impossible token */
} mn_token_logprob;

/* What the last mn_sampler_sample did (for the OpenAI `logprobs` fields and for diagnostics). */
typedef struct mn_sample_info {
    int32_t token;      /* the pick */
    int32_t n_possible; /* tokens the final step chose among (p > 0; greedy: 1); 0: none possible */
    float p;            /* probability of token in the final distribution (greedy: 1) */
    /* The rest is filled only when params.n_probs > 0 (else 0 / NULL). It describes the model's
     * own distribution, softmax of the logits as passed (before hook, bias, penalties and
     * temperature), like llama.cpp's n_probs and vLLM's raw logprobs. */
    float logprob;                /* log-probability of token */
    int32_t n_top;                /* entries in top: min(n_probs, n_vocab) */
    const mn_token_logprob *top;  /* most likely tokens, descending, ties by lower id; borrowed,
                                     valid until the next sample, reset or free of s */
} mn_sample_info;

/* Fills *out about the last sample. MN_ENOTFOUND when nothing was sampled since create/reset. */
mn_status mn_sampler_last(const mn_sampler *s, mn_sample_info *out);

/* Sparse additive logit bias (OpenAI logit_bias), applied to every later sample until replaced:
 * logit[ids[i]] += bias[i]. Replaces the previous bias; n == 0 clears it. Ids repeated add up.
 * Errors (MN_EINVAL, nothing changed): an id outside [0, n_vocab), a bias that is not finite or
 * outside [-100, 100], n < 0 or n > n_vocab, NULL arrays with n > 0. MN_ENOMEM. The message of
 * a failure is in mn_sampler_errmsg(s). Setting it allocates; sampling with it does not. */
mn_status mn_sampler_set_logit_bias(mn_sampler *s, const int32_t *ids, const float *bias, int32_t n);

/* A hook that edits the logits before every sample: for grammars (set forbidden tokens to
 * -INFINITY), watermarks or custom biases. It gets a private copy of the n_vocab logits as passed
 * to mn_sampler_sample (the caller's array is never modified; the logit bias is added after the
 * hook), runs on the thread that calls mn_sampler_sample, and must not call back into s. NaN it
 * writes counts as -Inf; if it forbids every token the sample returns 0 with n_possible 0.
 * fn NULL removes the hook (user is then ignored). */
typedef void (*mn_logit_hook)(void *user, float *logits, int32_t n_vocab);
void mn_sampler_set_logit_hook(mn_sampler *s, mn_logit_hook fn, void *user);

#ifdef __cplusplus
}
#endif
#endif /* MINNOW_H */
