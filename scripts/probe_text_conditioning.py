"""Does a text prior use its caption? epsilon-loss on training renders with the right, shuffled and
empty caption, in three noise bands (docs/RESULTS.md, bundled prior).
    python scripts/export_prior_checkpoint.py RUN /tmp/prior && python scripts/probe_text_conditioning.py /tmp/prior RUN
"""
import json, sys, torch, torch.nn.functional as F
from safetensors.torch import load_file
from dreamfusion3d.text_prior import TextPriorModel, SentenceEncoder
torch.set_num_threads(1); torch.manual_seed(0)
m = TextPriorModel.from_pretrained(sys.argv[1])
enc = SentenceEncoder.from_pretrained()
imgs = load_file(f"{sys.argv[2]}/dataset.safetensors")["images"]
caps = json.load(open(f"{sys.argv[2]}/dataset_captions.json"))["captions"]
idx = torch.randperm(len(caps))[:192]
x0 = imgs[idx]
if x0.shape[-1] == 3: x0 = x0.permute(0,3,1,2)
x0 = x0.float()/255*2-1
emb = enc.encode([caps[i] for i in idx]); unc = enc.encode([""]).expand_as(emb)
shuf = emb[torch.randperm(len(idx))]
for lo, hi in ((50,300),(300,600),(600,900)):
    t = torch.randint(lo, hi, (len(idx),)); n = torch.randn_like(x0); xt = m.scheduler.add_noise(x0, n, t)
    with torch.no_grad():
        r = {k: F.mse_loss(m(xt, t, e), n).item() for k, e in (("right", emb), ("shuffled", shuf), ("uncond", unc))}
    print(lo, hi, {k: round(v, 5) for k, v in r.items()})
