"""Automatic coronary calcium: which calcified candidates are coronary, and in which artery.

Pure numpy/scipy image analysis, deterministic and without trained parameters: lungs, heart and
aorta are found in the image, bone, aorta, valves, pericardium, metal and noise are excluded with
a recorded reason, and the rest is assigned to LM, LAD, LCX or RCA from its position relative to
the aortic root and the heart's axes. ::

    candidates = scoring.find_candidates(volume)
    labelling = detect_coronary_calcium(volume, candidates)
    result = scoring.score_candidates(candidates, labelling.labels, roi="auto")
"""

from scoring.coronary.detect import CardiacAnatomy, CoronaryLabelling, detect_coronary_calcium

__all__ = ["CardiacAnatomy", "CoronaryLabelling", "detect_coronary_calcium"]
