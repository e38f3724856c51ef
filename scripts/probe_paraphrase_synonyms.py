"""Would more training words per class help? Ridge read-outs trained on 1 or 4 synonyms per class
(disjoint from the held-out paraphrase words) and tested on the paraphrases (docs/RESULTS.md):
    python scripts/probe_paraphrase_synonyms.py
"""
import torch, itertools
from dreamfusion3d.models import SentenceEncoder
from dreamfusion3d.world.captions import PARA_COLORS, PARA_SHAPES
torch.set_num_threads(1)
enc=SentenceEncoder.from_pretrained()
SYN_C={"red":["red","ruby","cherry","maroon"],"green":["green","jade","olive","forest green"],"blue":["blue","cobalt","sapphire","sky blue"],
 "yellow":["yellow","canary","mustard","butter yellow"],"orange":["orange","apricot","pumpkin","peach"],"purple":["purple","lilac","plum","mauve"],
 "white":["white","snow white","cream","chalk"]}
SYN_S={"sphere":["sphere","bead","marble","bubble"],"cube":["cube","crate","brick","cuboid"],"cylinder":["cylinder","barrel","drum","pillar"],
 "cone":["cone","witch hat","spike","tepee"],"torus":["torus","bagel","tire","hoop"]}
para_words=set(w for v in PARA_COLORS.values() for w in v)|set(w for v in PARA_SHAPES.values() for w in v)
assert not para_words & set(w for v in list(SYN_C.values())+list(SYN_S.values()) for w in v)
cols=list(SYN_C); shapes=list(SYN_S)
def run(nc,ns):
    tr=[(c,s,f"a {cw} {sw}") for c in cols for s in shapes for cw in SYN_C[c][:nc] for sw in SYN_S[s][:ns]]
    pa=[(c,s,f"a {cw} {sw}") for c in cols for s in shapes for cw in PARA_COLORS[c] for sw in PARA_SHAPES[s]]
    te=enc.encode([t for *_,t in tr]); pe=enc.encode([t for *_,t in pa]); mu=te.mean(0)
    out=[]
    for idx,classes in ((1,shapes),(0,cols)):
        best=0
        for lam in (1e-2,1e-1,1,10):
            y=torch.tensor([classes.index(t[idx]) for t in tr]); Y=torch.nn.functional.one_hot(y).float()*2-1
            X=torch.cat([te-mu,torch.ones(len(te),1)],1); W=torch.linalg.solve(X.T@X+lam*torch.eye(X.shape[1]),X.T@Y)
            Xp=torch.cat([pe-mu,torch.ones(len(pe),1)],1); yp=torch.tensor([classes.index(t[idx]) for t in pa])
            best=max(best,((Xp@W).argmax(1)==yp).float().mean().item())
        out.append(round(best,3))
    return out
print("1 word per class (as now): shape, colour =",run(1,1))
print("4 words per class:          shape, colour =",run(4,4))
