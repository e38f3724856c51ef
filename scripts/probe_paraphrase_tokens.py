"""Token-level and static-word probes of MiniLM on the paraphrase words (docs/RESULTS.md):
    python scripts/probe_paraphrase_tokens.py
"""
import torch
from dreamfusion3d.models import SentenceEncoder
from dreamfusion3d.world.captions import PARA_COLORS, PARA_SHAPES
torch.set_num_threads(1)
enc=SentenceEncoder.from_pretrained(); tok=enc.tokenizer; m=enc.model
cols=list(PARA_COLORS); shapes=list(PARA_SHAPES)
def states(texts):
    b=tok(texts,padding=True,return_tensors="pt")
    with torch.no_grad(): h=m(**b).last_hidden_state
    return b, torch.nn.functional.normalize(h,dim=-1)
# prototypes: token states of the class word in "a {c} {s}" training captions
tr=[(c,s,f"a {c} {s}") for c in cols for s in shapes]
b,h=states([t for *_,t in tr])
ids=b["input_ids"]
# positions: [CLS] a c s [SEP] for single-token words
cproto=torch.stack([h[[i for i,t in enumerate(tr) if t[0]==c],2].mean(0) for c in cols])
sproto=torch.stack([h[[i for i,t in enumerate(tr) if t[1]==s],3].mean(0) for s in shapes])
pa=[(c,s,f"a {pc} {ps}") for c in cols for s in shapes for pc in PARA_COLORS[c] for ps in PARA_SHAPES[s]]
b,h=states([t for *_,t in pa]); mask=b["attention_mask"].bool()
def acc(protos,idx,classes):
    sim=torch.einsum("bld,kd->blk",h,protos); sim[~mask]=-9
    sim[:,0]=-9  # not CLS
    pred=sim.max(1).values.argmax(1)
    return sum(classes[p]==pa[i][idx] for i,p in enumerate(pred.tolist()))/len(pa)
print("token-level max-sim: colour",acc(cproto,0,cols),"shape",acc(sproto,1,shapes))
# static (context-free) word embeddings
E=m.embeddings.word_embeddings.weight
def wv(w): 
    i=tok(w,add_special_tokens=False)["input_ids"]; return torch.nn.functional.normalize(E[i].mean(0),dim=0)
for name,classes,P,idx in (("colour",cols,PARA_COLORS,0),("shape",shapes,PARA_SHAPES,1)):
    pr=torch.stack([wv(c) for c in classes]); ok=[];
    for c in classes:
        for w in P[c]: ok.append(classes[int((pr@wv(w)).argmax())]==c)
    print("static word emb",name,sum(ok)/len(ok))
