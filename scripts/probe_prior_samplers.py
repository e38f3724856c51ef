"""Sample a text prior with several samplers (x0 clipping on/off, DDIM / DPM-Solver++, CFG) and let
the evaluation classifier judge shape and colour (docs/RESULTS.md, "What changed on 2026-11-23"):
    python scripts/probe_prior_samplers.py PRIOR_FOLDER [K] [ddim,ddim_noclip,dpm++,...]
"""
import sys, time, torch, numpy as np, collections
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, DDPMScheduler, EulerAncestralDiscreteScheduler
from dreamfusion3d.models import TextPriorModel, SentenceEncoder
from dreamfusion3d.models.classifier import ShapeColorClassifier
from dreamfusion3d.evaluate_prior import evaluation_captions
torch.set_num_threads(1)
model=TextPriorModel.from_pretrained(sys.argv[1]); enc=SentenceEncoder.from_pretrained(); judge=ShapeColorClassifier.from_pretrained()
caps=evaluation_captions(False); K=int(sys.argv[2]) if len(sys.argv)>2 else 2
@torch.no_grad()
def sample(sched, prompts, steps, gs, gen):
    sched.set_timesteps(steps); n=len(prompts); r=model.resolution
    cond=enc.encode(prompts); unc=enc.encode([""]).expand(n,-1)
    x=torch.randn(n,3,r,r,generator=gen)*sched.init_noise_sigma
    for t in sched.timesteps:
        xin=sched.scale_model_input(x,t)
        tt=torch.full((2*n,),int(t),dtype=torch.long)
        e=model(torch.cat([xin,xin]),tt,torch.cat([cond,unc])); ec,eu=e.chunk(2)
        x=sched.step(eu+gs*(ec-eu),t,x,generator=gen).prev_sample
    return ((x.clamp(-1,1)+1)/2)
cfg=model.scheduler.config
variants={
 "ddim":(lambda: DDIMScheduler.from_config(cfg),50,5.0),
 "ddim_noclip":(lambda: DDIMScheduler.from_config(cfg,clip_sample=False),50,5.0),
 "ddim_thresh":(lambda: DDIMScheduler.from_config(cfg,clip_sample=False,thresholding=True),50,5.0),
 "ddim_trailing":(lambda: DDIMScheduler.from_config(cfg,timestep_spacing="trailing"),50,5.0),
 "dpm++":(lambda: DPMSolverMultistepScheduler.from_config(cfg),25,5.0),
 "ddim_cfg3":(lambda: DDIMScheduler.from_config(cfg),50,3.0),
}
sel=sys.argv[3].split(",") if len(sys.argv)>3 else list(variants)
for name in sel:
    mk,steps,gs=variants[name]; t0=time.time(); gen=torch.Generator().manual_seed(0)
    per=collections.defaultdict(list); col=[]
    imgs=[]
    for text,s,c in caps:
        im=sample(mk(),[text]*K,steps,gs,gen); imgs.append(im)
        ps,pc=judge.predict(im); per[s]+= [p==s for p in ps]; col+=[p==c for p in pc]
    allsh=np.mean([v for l in per.values() for v in l])
    print(f"{name:14s} shape {allsh:.3f} colour {np.mean(col):.3f} ", {k:round(float(np.mean(v)),2) for k,v in per.items()}, f"{time.time()-t0:.0f}s", flush=True)
