"""How well the MiniLM sentence embedding maps held-out paraphrases onto the training words:
nearest training caption and mean-centred class centroids (docs/RESULTS.md, bundled prior).
    python scripts/encoder_paraphrase_nn.py
"""
import torch
from dreamfusion3d.text_prior import SentenceEncoder
from dreamfusion3d.world.captions import PARA_COLORS, PARA_SHAPES
torch.set_num_threads(1)
enc = SentenceEncoder.from_pretrained()
cols=["red","green","blue","yellow","orange","purple","white"]; shapes=["sphere","cube","cylinder","cone","torus"]
train=[(c,s,f"a {c} {s}") for c in cols for s in shapes]
para=[(c,s,f"a {pc} {ps}") for c in cols for s in shapes for pc in PARA_COLORS[c] for ps in PARA_SHAPES[s]]
te=enc.encode([t for *_,t in train]); pe=enc.encode([t for *_,t in para])
sim=pe@te.T; nn=sim.argmax(1)
sh=sum(train[j][1]==para[i][1] for i,j in enumerate(nn.tolist()))/len(para)
co=sum(train[j][0]==para[i][0] for i,j in enumerate(nn.tolist()))/len(para)
print(f"nearest training caption: shape {sh:.3f} colour {co:.3f} over {len(para)}")
# linear probe style: mean embedding per shape / colour class
import collections
for name, idx in (("shape",1),("colour",0)):
    classes=sorted(set(t[idx] for t in train))
    cent=torch.stack([te[[i for i,t in enumerate(train) if t[idx]==c]].mean(0) for c in classes])
    cent=cent-te.mean(0)
    pred=((pe-te.mean(0))@cent.T).argmax(1)
    acc=sum(classes[p]==para[i][idx] for i,p in enumerate(pred.tolist()))/len(para)
    print(name,"centroid (mean-centred) acc",acc)
    per=collections.defaultdict(list)
    for i,p in enumerate(pred.tolist()): per[para[i][idx]].append(classes[p]==para[i][idx])
    print({k:round(sum(v)/len(v),2) for k,v in per.items()})
