"""How well the pooled MiniLM embedding of a caption can be read out for shape and colour on held-out
paraphrases: ridge read-outs fitted on 1,575 training phrasings and tested on 15,750 paraphrased ones
(raw, centred, standardised input), and nearest neighbours (docs/RESULTS.md, bundled prior):
    python scripts/probe_paraphrase_readout.py
"""
import torch, numpy as np, itertools, time
from dreamfusion3d.models import SentenceEncoder
from dreamfusion3d.world.captions import *
from dreamfusion3d.world import caption
torch.set_num_threads(2)
enc = SentenceEncoder.from_pretrained()
cols=list(TRAIN_COLORS); shapes=list(TRAIN_SHAPES)
views=[None,"front","side","back","overhead"]
def gen(para):
    C=PARA_COLORS if para else TRAIN_COLORS; S=PARA_SHAPES if para else TRAIN_SHAPES
    Z=PARA_SIZES if para else TRAIN_SIZES; T=PARA_TEMPLATES if para else TRAIN_TEMPLATES; V=PARA_VIEWS if para else TRAIN_VIEWS
    out=[]
    for c in cols:
        for s in shapes:
            for cw in C[c]:
                for sw in S[s]:
                    for size in [None]+[w for z in Z.values() for w in z]:
                        for t in set(T):
                            for v in views:
                                x=(size+" " if size else "")+cw+" "+sw
                                x=("an " if x[0] in "aeiou" else "a ")+x
                                txt=t.format(x=x)
                                if v: txt+=", "+V[v]
                                out.append((c,s,txt))
    return out
tr=gen(False); pa=gen(True)
print(len(tr),len(pa))
t0=time.time()
E=lambda L: torch.cat([enc.encode([x for *_,x in L[i:i+512]]) for i in range(0,len(L),512)])
te=E(tr); pe=E(pa); print("enc",time.time()-t0)
cols=sorted(set(c for c,_,_ in tr)); shapes=sorted(set(s for _,s,_ in tr))
def probe(Xtr,Xpa,idx,classes,lam):
    y=torch.tensor([classes.index(t[idx]) for t in tr]); Y=torch.nn.functional.one_hot(y).float()*2-1
    X=torch.cat([Xtr,torch.ones(len(Xtr),1)],1)
    W=torch.linalg.solve(X.T@X+lam*torch.eye(X.shape[1]),X.T@Y)
    Xp=torch.cat([Xpa,torch.ones(len(Xpa),1)],1)
    yp=torch.tensor([classes.index(t[idx]) for t in pa])
    return ((Xp@W).argmax(1)==yp).float().mean().item()
mu=te.mean(0); sd=te.std(0)
for name,f in [("raw",lambda x:x),("centred",lambda x:x-mu),("std",lambda x:(x-mu)/sd)]:
    for lam in [1e-3,1e-1,1,10]:
        print(name,lam,"shape",round(probe(f(te),f(pe),1,shapes,lam),3),"colour",round(probe(f(te),f(pe),0,cols,lam),3))
# nearest neighbour with centring
for name,f in [("raw",lambda x:x),("centred",lambda x:torch.nn.functional.normalize(x-mu,dim=1))]:
    nn=(f(pe)@f(te).T).argmax(1)
    print(name,"NN shape",sum(tr[j][1]==pa[i][1] for i,j in enumerate(nn.tolist()))/len(pa),"colour",sum(tr[j][0]==pa[i][0] for i,j in enumerate(nn.tolist()))/len(pa))
