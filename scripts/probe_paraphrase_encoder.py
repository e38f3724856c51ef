"""How much of "shape" and "colour" the frozen MiniLM encoder carries over to held-out paraphrase
words (docs/RESULTS.md, "Why paraphrases fail"). Three probes, each an upper bound for conditioning
that is learnt from the training words:
  1. ridge read-outs of the pooled embedding, fitted on 1,575 training phrasings (all templates,
     sizes and view words) and tested on 15,750 paraphrased ones; raw, centred and standardised
     inputs; plus nearest training caption;
  2. contextual token states and static word vectors against the training words;
  3. read-outs trained on 1 or 4 synonyms per class (disjoint from the held-out words).
    python scripts/probe_paraphrase_encoder.py
"""

import torch

from dreamfusion3d.text_prior import SentenceEncoder
from dreamfusion3d.world.captions import (PARA_COLORS, PARA_SHAPES, PARA_SIZES, PARA_TEMPLATES, PARA_VIEWS,
                                          TRAIN_COLORS, TRAIN_SHAPES, TRAIN_SIZES, TRAIN_TEMPLATES, TRAIN_VIEWS)

torch.set_num_threads(2)
enc = SentenceEncoder.from_pretrained()
COLS, SHAPES = list(TRAIN_COLORS), list(TRAIN_SHAPES)


def encode(captions):
    texts = [t for *_, t in captions]
    return torch.cat([enc.encode(texts[i:i + 512]) for i in range(0, len(texts), 512)])


def ridge_accuracy(x_train, train, x_test, test, idx, classes, lams=(1e-3, 1e-1, 1.0, 10.0)):
    """Best test accuracy over λ of a one-vs-rest ridge read-out of field ``idx`` (0 colour, 1 shape)."""
    def design(x):
        return torch.cat([x, torch.ones(len(x), 1)], 1)

    y = torch.nn.functional.one_hot(torch.tensor([classes.index(t[idx]) for t in train])).float() * 2 - 1
    y_test = torch.tensor([classes.index(t[idx]) for t in test])
    x, xt = design(x_train), design(x_test)
    best = 0.0
    for lam in lams:
        w = torch.linalg.solve(x.T @ x + lam * torch.eye(x.shape[1]), x.T @ y)
        best = max(best, float(((xt @ w).argmax(1) == y_test).float().mean()))
    return best


def all_phrasings(paraphrase):
    colors, shapes = (PARA_COLORS, PARA_SHAPES) if paraphrase else (TRAIN_COLORS, TRAIN_SHAPES)
    sizes, templates, views = (PARA_SIZES, PARA_TEMPLATES, PARA_VIEWS) if paraphrase else (TRAIN_SIZES, TRAIN_TEMPLATES, TRAIN_VIEWS)
    out = []
    for c in COLS:
        for s in SHAPES:
            for cw in colors[c]:
                for sw in shapes[s]:
                    for size in [None] + [w for z in sizes.values() for w in z]:
                        for template in sorted(set(templates)):
                            for v in [None, *views]:
                                x = (size + " " if size else "") + cw + " " + sw
                                text = template.format(x=("an " if x[0] in "aeiou" else "a ") + x)
                                out.append((c, s, text + (", " + views[v] if v else "")))
    return out


# 1. pooled embedding
train, para = all_phrasings(False), all_phrasings(True)
te, pe = encode(train), encode(para)
mu, sd = te.mean(0), te.std(0)
for name, f in (("raw", lambda x: x), ("centred", lambda x: x - mu), ("standardised", lambda x: (x - mu) / sd)):
    print(f"ridge read-out, {name}: shape {ridge_accuracy(f(te), train, f(pe), para, 1, SHAPES):.3f} "
          f"colour {ridge_accuracy(f(te), train, f(pe), para, 0, COLS):.3f}")
for name, f in (("raw", lambda x: x), ("centred", lambda x: torch.nn.functional.normalize(x - mu, dim=1))):
    nn = (f(pe) @ f(te).T).argmax(1).tolist()
    shape = sum(train[j][1] == para[i][1] for i, j in enumerate(nn)) / len(para)
    colour = sum(train[j][0] == para[i][0] for i, j in enumerate(nn)) / len(para)
    print(f"nearest training caption, {name}: shape {shape:.3f} colour {colour:.3f}")

# 2. tokens: prototypes are the class word's state in "a <colour> <shape>" ([CLS] a c s [SEP])
tok, model = enc.tokenizer, enc.model


def states(texts):
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return batch["attention_mask"].bool(), torch.nn.functional.normalize(model(**batch).last_hidden_state, dim=-1)


simple = [(c, s, f"a {c} {s}") for c in COLS for s in SHAPES]
_, h = states([t for *_, t in simple])
protos = {0: torch.stack([h[[i for i, t in enumerate(simple) if t[0] == c], 2].mean(0) for c in COLS]),
          1: torch.stack([h[[i for i, t in enumerate(simple) if t[1] == s], 3].mean(0) for s in SHAPES])}
simple_para = [(c, s, f"a {pc} {ps}") for c in COLS for s in SHAPES for pc in PARA_COLORS[c] for ps in PARA_SHAPES[s]]
mask, h = states([t for *_, t in simple_para])
for idx, classes, name in ((0, COLS, "colour"), (1, SHAPES, "shape")):
    sim = torch.einsum("bld,kd->blk", h, protos[idx])
    sim[~mask] = -9
    sim[:, 0] = -9  # not [CLS]
    pred = sim.max(1).values.argmax(1).tolist()
    acc = sum(classes[p] == simple_para[i][idx] for i, p in enumerate(pred)) / len(simple_para)
    table = model.embeddings.word_embeddings.weight

    def word_vector(w):
        ids = tok(w, add_special_tokens=False)["input_ids"]
        return torch.nn.functional.normalize(table[ids].mean(0), dim=0)

    anchors = torch.stack([word_vector(c) for c in classes])
    words = PARA_COLORS if idx == 0 else PARA_SHAPES
    hits = [classes[int((anchors @ word_vector(w)).argmax())] == c for c in classes for w in words[c]]
    print(f"{name}: contextual token states {acc:.3f}, static word vectors {sum(hits) / len(hits):.3f}")

# 3. more training words per class (none of them a held-out paraphrase word)
SYN_C = {"red": ["red", "ruby", "cherry", "maroon"], "green": ["green", "jade", "olive", "forest green"],
         "blue": ["blue", "cobalt", "sapphire", "sky blue"], "yellow": ["yellow", "canary", "mustard", "butter yellow"],
         "orange": ["orange", "apricot", "pumpkin", "peach"], "purple": ["purple", "lilac", "plum", "mauve"],
         "white": ["white", "snow white", "cream", "chalk"]}
SYN_S = {"sphere": ["sphere", "bead", "marble", "bubble"], "cube": ["cube", "crate", "brick", "cuboid"],
         "cylinder": ["cylinder", "barrel", "drum", "pillar"], "cone": ["cone", "witch hat", "spike", "tepee"],
         "torus": ["torus", "bagel", "tire", "hoop"]}
held_out = {w for v in (*PARA_COLORS.values(), *PARA_SHAPES.values()) for w in v}
assert not held_out & {w for v in (*SYN_C.values(), *SYN_S.values()) for w in v}
pe = encode(simple_para)
for n in (1, 4):
    syn = [(c, s, f"a {cw} {sw}") for c in COLS for s in SHAPES for cw in SYN_C[c][:n] for sw in SYN_S[s][:n]]
    te = encode(syn)
    m = te.mean(0)
    print(f"{n} training word(s) per class: shape {ridge_accuracy(te - m, syn, pe - m, simple_para, 1, SHAPES, (1e-2, 1e-1, 1.0, 10.0)):.3f} "
          f"colour {ridge_accuracy(te - m, syn, pe - m, simple_para, 0, COLS, (1e-2, 1e-1, 1.0, 10.0)):.3f}")
