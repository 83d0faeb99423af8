"""Knowledge-layer candidates: the code sets' terms matched in the note.

The dictionary is every phrase of the knowledge base that leads to a code (tabular titles,
inclusion terms, alphabetic-index paths, neoplasm/external-cause tables, PCS index and table
phrases) plus generated imaging phrases (modality x body region -> ICD-10-PCS section B
codes, :func:`imaging_entries`), compiled once into a :class:`~opencac.nlp.MentionMatcher`
and cached beside the knowledge-base artifact.

Index codes may be incomplete (``D49.51-``, ``0TB``): :func:`hits_from_mentions` keeps the
complete part and marks the hit ``incomplete`` so that the engine can expand it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opencac.codesets.types import CodeSystem

#: Term sources used by default (the drug table is left out: its cells lead to poisoning
#: codes, while notes mostly name drugs as treatment - except its terms for the status of a
#: drug's long-term use, Z79.-, which ``_entries`` always takes).
DEFAULT_SOURCES = frozenset({"tabular", "inclusion", "index", "eindex", "neoplasm", "pcs-index", "pcs-table",
                             "imaging", "clinical"})

_SOURCE_ID = {"tabular": 0, "inclusion": 1, "index": 2, "eindex": 3, "neoplasm": 4, "drug": 5,
              "pcs-index": 6, "pcs-table": 7, "imaging": 8, "clinical": 10}

#: The ways notes say an eye sees less (the H54 phrases of :data:`CLINICAL_PHRASES` add the eye).
_VISION_LOSS = ("vision loss", "loss of vision", "visual loss", "loss of visual acuity", "decreased vision",
                "decrease in vision", "decreased visual acuity", "decrease in visual acuity", "reduced vision",
                "reduced visual acuity")
#: Status and history phrases as notes write them, which the code titles and the index word
#: differently (source ``clinical``). Each maps to the code the ICD-10-CM index gives for the
#: concept (History, personal, nicotine dependence Z87.891; Allergy, penicillin Z88.0; Allergy,
#: radiographic dye Z91.041; Dependence, on, oxygen Z99.81; Dependence, on, renal dialysis Z99.2;
#: Status, transplant, kidney Z94.0; Status, pacemaker Z95.0; Long-term drug therapy,
#: anticoagulants Z79.01, steroids systemic Z79.52, insulin Z79.4, oral hypoglycemic drugs Z79.84,
#: antiplatelets Z79.02; Dependence, on, wheelchair Z99.3; Absence, uterus Z90.710; History, personal,
#: irradiation Z92.3, antineoplastic chemotherapy Z92.21; Drinking, excessive F10.10; Dependence,
#: nicotine, cigarettes F17.210), and findings the index names by one
#: word where notes describe them (Pallor R23.1; Sweating, excessive R61, Diaphoresis R61;
#: Hematuria, gross R31.0). A trained model learns how often each phrase is coded
#: (dictionary-hit precision), as for every other source.
CLINICAL_PHRASES: dict[str, tuple[str, ...]] = {
    "Z87.891": ("ex-smoker", "exsmoker", "former smoker", "ex smoker", "quit smoking", "history of smoking",
                "smoking history"),
    # Drinking (alcohol), excessive, to excess NEC (without dependence) F10.10, as notes describe it
    "F10.10": ("drinker", "heavy drinker", "moderate drinker", "regular drinker", "alcohol drinker",
               "binge drinker", "heavy drinking", "binge drinking", "excessive drinking",
               "excessive alcohol consumption", "alcohol abuse"),
    # Use, cocaine F14.90 (the index's "Use" is a user's word too)
    "F14.90": ("cocaine user", "cocaine use", "cocaine consumption", "consumption of cocaine", "cocaine consumer"),
    # Dependence, nicotine, cigarettes F17.210, where the note counts them
    "F17.210": ("cigarettes a day", "cigarettes per day", "cigarettes daily", "cigarettes/day",
                "pack of cigarettes", "packs of cigarettes", "cigarette smoking"),
    "Z88.0": ("allergy to penicillin", "allergic to penicillin", "penicillin allergy", "allergy to penicillins",
              "allergic to penicillins"),
    "Z91.041": ("allergy to contrast", "allergic to contrast", "contrast allergy", "iodine allergy",
                "allergic to iodine", "allergy to iodinated contrast"),
    "Z99.81": ("home oxygen", "home oxygen therapy", "chronic home oxygen", "oxygen dependent"),
    "Z99.2": ("chronic hemodialysis", "on hemodialysis", "hemodialysis program", "on dialysis",
              "dialysis dependent", "peritoneal dialysis program"),
    "Z94.0": ("kidney transplant recipient", "renal transplant recipient", "renal transplant carrier",
              "kidney transplant carrier"),
    "Z95.0": ("pacemaker carrier", "pacemaker wearer", "pacemaker implanted", "carrier of a pacemaker"),
    "Z79.01": ("oral anticoagulation", "anticoagulant therapy", "anticoagulant treatment", "anticoagulated with",
               "acenocoumarol", "warfarin"),
    "Z79.52": ("chronic corticosteroid treatment", "chronic corticosteroid therapy", "long-term corticosteroids",
               "chronic steroid therapy", "chronic steroid treatment", "corticotherapy"),
    "Z79.4": ("insulin therapy", "insulin treatment", "insulin-treated", "on insulin", "insulin-dependent",
              "insulin dependent"),
    "Z79.84": ("oral antidiabetics", "oral antidiabetic drugs", "oral antidiabetic agents", "oral hypoglycemic agents",
               "oral hypoglycemics", "metformin"),
    "Z79.02": ("antiplatelet therapy", "antiplatelet treatment", "antiplatelet agents", "antiaggregant therapy",
               "antiaggregant treatment", "clopidogrel"),
    "Z99.3": ("wheelchair", "wheelchair-bound", "wheelchair bound", "wheelchair dependent", "confined to a wheelchair"),
    "Z90.710": ("hysterectomized", "previous hysterectomy", "prior hysterectomy", "status post hysterectomy",
                "history of hysterectomy"),
    "Z92.3": ("previous radiotherapy", "prior radiotherapy", "history of radiotherapy", "received radiotherapy",
              "previous radiation therapy", "history of radiation therapy"),
    "Z92.21": ("previous chemotherapy", "prior chemotherapy", "history of chemotherapy", "received chemotherapy"),
    "R23.1": ("pale skin", "pale face", "pale mucous membranes", "mucous membranes pale", "skin pallor",
              "cutaneous pallor", "mucocutaneous pallor", "paleness", "was pale", "appeared pale", "looked pale",
              "conjunctival pallor", "pale conjunctiva", "pale conjunctivae"),
    "R61": ("sweating", "profuse sweating", "diaphoretic", "sweaty"),
    "R31.0": ("macroscopic hematuria", "frank hematuria"),
    # Loss, vision, visual H54.7; one eye, right H54.61, left H54.62; both eyes H54.3 (notes name the eye,
    # not "one eye")
    "H54.7": ("vision loss", "visual loss", "loss of vision"),
    # the loss named with the eye, in the ways notes say it ("decrease in vision in her right eye",
    # "loss of visual acuity of the left eye")
    "H54.61": tuple(f"{loss} right eye" for loss in _VISION_LOSS),
    "H54.62": tuple(f"{loss} left eye" for loss in _VISION_LOSS),
    "H54.3": ("bilateral vision loss", "bilateral loss of vision", "bilateral decreased visual acuity",
              *(f"{loss} both eyes" for loss in _VISION_LOSS)),
    # Pain, low back (lumbar region) M54.50; Spanish "dolor lumbar" translates to "lumbar pain"
    "M54.50": ("lumbar pain", "lumbosacral pain", "pain in the lumbar region", "pain in the lumbar area"),
    # Disability, intellectual F79 (Spanish "deficit intelectual")
    "F79": ("intellectual deficit", "intellectual deficiency", "intellectual impairment"),
    # Elevated, transaminase level R74.01; notes name the enzymes' rise, not the "level"
    "R74.01": ("elevated transaminases", "increased transaminases", "raised transaminases", "high transaminases",
               "increase in transaminases", "increase in transaminase levels", "rise in transaminases",
               "rise in transaminase levels", "elevation of transaminases", "transaminase elevation",
               "hypertransaminasemia"),
    # Sicca syndrome M35.00 (Spanish "sindrome seco")
    "M35.00": ("dry syndrome",),
    # Stenosis, spinal, lumbar region M48.061 (the note names the canal)
    "M48.061": ("lumbar canal stenosis", "stenosis of the lumbar canal", "lumbar spinal canal stenosis",
                "narrow lumbar canal"),
    # Neoplasm, cervix (uteri), malignant C53.9: "cervical" alone also names the neck
    "C53.9": ("cervical cancer", "cancer of the cervix", "carcinoma of the cervix", "cervix cancer",
              "cervical carcinoma of the uterus", "uterine cervical cancer"),
    # Toxoplasma, toxoplasmosis, with ocular involvement B58.00
    "B58.00": ("ocular toxoplasmosis", "toxoplasmic retinochoroiditis", "toxoplasma retinochoroiditis"),
    # a tonic-clonic seizure is a grand mal one (Seizure, grand mal G40.409; nonspecific epileptic,
    # tonic-clonic - see Epilepsy, generalized, specified NEC)
    "G40.409": ("tonic-clonic seizure", "tonic-clonic crisis", "tonic-clonic convulsion",
                "generalized tonic-clonic seizure", "generalized tonic-clonic crisis"),
    # pain on palpation is tenderness (Tenderness, abdominal R10.819; generalized R10.817)
    "R10.819": ("pain on abdominal palpation", "pain at abdominal palpation", "pain to abdominal palpation",
                "abdominal pain on palpation", "abdominal pain at palpation", "abdominal pain to palpation",
                "abdomen painful on palpation", "abdomen painful to palpation", "painful abdomen on palpation"),
    "R10.817": ("diffuse pain on abdominal palpation", "diffuse pain at abdominal palpation",
                "diffuse pain to abdominal palpation", "diffuse abdominal pain on palpation",
                "diffuse abdominal pain at palpation", "diffuse abdominal pain to palpation",
                "diffuse abdominal tenderness"),
    # Polycystic, kidney Q61.3 (Spanish "poliquistosis renal / hepatorrenal")
    "Q61.3": ("renal polycystosis", "hepatorenal polycystosis", "kidney polycystosis", "polycystic kidneys"),
    # Pain, joint M25.50 (Spanish "dolor osteoarticular")
    "M25.50": ("osteoarticular pain",),
    # Injury, multiple T07 (Spanish "politraumatismo")
    "T07": ("multiple trauma", "polytrauma", "multiple traumatism", "polytraumatized", "polytraumatised"),
    # Infarct, myocardium, inferior (wall) I21.19 (the index words it "myocardium, inferior")
    "I21.19": ("inferior acute myocardial infarction", "inferior myocardial infarction", "inferior wall infarction",
               "inferoposterior acute myocardial infarction", "inferoposterior myocardial infarction",
               "inferior infarction"),
    # Hemorrhage, gingiva K06.8 (Spanish "gingivorragia")
    "K06.8": ("gingival bleeding", "bleeding gums", "gum bleeding", "gingivorrhagia", "gingivorrhagias"),
    # Retention, urine R33.9: a distended bladder (Spanish "globo vesical"), "urinary retention"
    "R33.9": ("bladder balloon", "vesical balloon", "bladder globe", "vesical globe", "urinary retention",
              "acute urinary retention"),
    # Nephritis, tubulo-interstitial N12
    "N12": ("tubulointerstitial nephritis", "tubulointerstitial nephropathy", "tubulo-interstitial nephropathy"),
    # the title of D65 (its index entries name the obstetric forms only)
    "D65": ("disseminated intravascular coagulation",),
    # Blood, occult in feces R19.5 (CodiEsp codes the test's finding)
    "R19.5": ("fecal occult blood", "occult blood in feces", "occult blood in stool", "occult blood in the stool"),
    # Bite, insect (nonvenomous) W57
    "W57": ("tick bite", "mosquito bite", "insect bite"),
    # Injury, head S09.90 (Spanish "traumatismo craneoencefalico")
    "S09.90": ("head trauma", "cranial trauma", "cranioencephalic trauma", "craniocerebral trauma",
               "cranioencephalic traumatism", "head traumatism"),
    # Imprisonment Z65.1 (not "incarcerated": in notes that is a hernia's or a prolapse's)
    "Z65.1": ("in prison", "prisoner", "imprisoned"),
    # Arteritis, temporal, giant cell M31.6; Abscess, psoas muscle K68.12; Mutation, factor V
    # Leiden D68.51; Obesity, severe E66.01; Disorder, adjustment F43.20 (Spanish "trastorno
    # adaptativo"); Pancreatitis, chronic, alcohol-induced K86.0; Diabetes, with, skin complication
    # E11.628 (type 2 when the type is not documented); Frequency, micturition R35.0; Nodule, lung,
    # multiple R91.8 (a note's "pulmonary nodules": the normaliser reads plurals as the singular);
    # Mass, neck R22.1
    "M31.6": ("temporal arteritis", "giant cell arteritis", "horton arteritis", "horton disease"),
    "K68.12": ("psoas abscess",),
    "D68.51": ("factor v leiden",),
    "E66.01": ("extreme obesity", "severe obesity"),
    "F43.20": ("adaptive disorder", "adaptation disorder"),
    "K86.0": ("alcoholic chronic pancreatitis", "chronic alcoholic pancreatitis"),
    "E11.628": ("diabetic dermopathy",),
    "R35.0": ("urinary frequency", "frequency of urination", "increased urinary frequency"),
    "R91.8": ("pulmonary nodules", "lung nodules"),
    "R22.1": ("cervical mass", "laterocervical mass", "submandibular mass", "neck mass"),
    # Syndrome, pain, complex regional I G90.50 (the index's "complex regional pain" names the
    # level "complex regional" that only its types I and II have)
    "G90.50": ("complex regional pain syndrome", "reflex sympathetic dystrophy"),
    # Abscess, dental K04.7 (Spanish "flemon dentario")
    "K04.7": ("dental phlegmon", "odontogenic phlegmon", "dental abscess"),
    # Nosocomial condition Y95
    "Y95": ("nosocomial", "hospital-acquired"),
    # Embolism, cholesterol - see Atheroembolism (specified NEC I75.89)
    "I75.89": ("cholesterol emboli", "cholesterol embolism", "cholesterol embolization"),
    # Carcinomatosis, peritonei C78.6
    "C78.6": ("peritoneal carcinomatosis",),
    # Leukemia, chronic lymphocytic, of B-cell type C91.1- (a CLL is a B-cell one; the bare words
    # otherwise reach only "Chronic leukemia of unspecified cell type", C95.1-)
    "C91.10": ("chronic lymphocytic leukemia", "chronic lymphatic leukemia", "chronic lymphoid leukemia"),
    # Lumbago, with sciatica M54.40 (Spanish "lumbociatica", "lumbociatalgia")
    "M54.40": ("lumbosciatica", "lumbosciatic pain", "lumbosciatalgia", "lumbociatalgia", "lumbar sciatica"),
}
#: Lymph node regions: enlarged nodes of a named region are localized (Enlarged, lymph gland or
#: node, localized R59.0), where "lymphadenopathy" alone is generalized (R59.1) and "adenopathy"
#: unspecified (R59.9).
_NODE_REGIONS = ("axillary", "inguinal", "cervical", "laterocervical", "supraclavicular", "submandibular",
                 "submaxillary", "mediastinal", "hilar", "hiliar", "paratracheal", "retroperitoneal",
                 "para-aortic", "paraaortic", "periaortic", "celiac", "mesenteric", "iliac", "pelvic", "abdominal",
                 "popliteal", "epitrochlear", "occipital", "preauricular", "jugular", "parotid", "portal")
CLINICAL_PHRASES["R59.0"] = tuple(f"{region} {noun}" for region in _NODE_REGIONS
                                  for noun in ("lymphadenopathy", "adenopathy", "adenomegaly"))
#: Abdominal regions by the names notes use for the index's quadrants (Pain, abdominal, lower,
#: right quadrant R10.31; upper, left quadrant R10.12; lower R10.30; periumbilical R10.33;
#: generalized R10.84): the iliac fossae are the lower quadrants, the hypochondria the upper ones,
#: the hypogastrium the lower abdomen, the mesogastrium the periumbilical region.
CLINICAL_PHRASES.update({
    code: tuple(f"{region} {pain}" for region in regions for pain in ("pain", "abdominal pain"))
    for code, regions in (("R10.31", ("right iliac fossa",)), ("R10.32", ("left iliac fossa",)),
                          ("R10.11", ("right hypochondrium", "right hypochondrial")),
                          ("R10.12", ("left hypochondrium", "left hypochondrial")),
                          ("R10.30", ("hypogastric", "hypogastrium")), ("R10.33", ("mesogastric", "mesogastrium")),
                          ("R10.84", ("diffuse",)))})

_FUNDUS = ("eye fundus", "fundus examination", "funduscopy", "fundoscopy", "ophthalmoscopy",
           "funduscopic examination", "fundus of the eye", "fundus of both eyes")

#: Procedures as CodiEsp *train* notes word them where no PCS index term does, with the code
#: as CodiEsp codes them (ICD-10-PCS Index: Intubation, Airway - see Insertion of device in,
#: Trachea 0BH1; Delivery, Products of Conception 10E0XZZ), and tests the index names by a table
#: prefix that has one complete code for them.
CLINICAL_PROCEDURES: dict[str, tuple[str, ...]] = {
    "0BH1": ("intubation", "orotracheal intubation", "endotracheal intubation", "nasotracheal intubation",
             "intubated", "reintubation", "reintubated", "tracheal intubation"),
    "10E0XZZ": ("eutocic delivery", "normal delivery", "vaginal delivery", "spontaneous delivery",
                "eutocic birth", "normal birth", "childbirth"),
    # the index's measurements completed as every such test is done (Electrocardiogram - see
    # Measurement, Cardiac 4A02: external approach X, electrical activity 4, no qualifier Z)
    "4A02X4Z": ("ecg", "ekg", "electrocardiogram", "electrocardiography", "electrocardiographic study"),
    "4A00X4Z": ("eeg", "electroencephalogram", "electroencephalography", "electroencephalographic study"),
    # Nutrition, parenteral: introduction of a nutritional substance into a central vein, percutaneous
    "3E0436Z": ("total parenteral nutrition", "tpn", "parenteral nutrition"),
    # ... enteral: into the upper GI tract, via natural or artificial opening
    "3E0G76Z": ("enteral nutrition", "enteral feeding", "nasogastric feeding", "tube feeding"),
    # endoscopies as notes name them (Esophagogastroduodenoscopy 0DJ08ZZ; Colonoscopy 0DJD8ZZ)
    "0DJ08ZZ": ("upper gastrointestinal endoscopy", "upper digestive endoscopy", "upper endoscopy",
                "upper gi endoscopy", "oral digestive endoscopy"),
    "0DJD8ZZ": ("lower gastrointestinal endoscopy", "lower digestive endoscopy", "lower gi endoscopy"),
    # Tracheostomy - see Bypass, Respiratory System 0B1: the trachea (its device and approach are
    # the coder's choice)
    "0B11": ("tracheostomy", "tracheotomy"),
    # a urinary catheter is drainage of the bladder (0T9B; device and approach left to the coder)
    "0T9B": ("bladder catheterization", "urinary catheterization", "vesical catheterization", "bladder catheter",
             "urinary catheter", "vesical catheter", "bladder catheterisation", "urinary catheterisation"),
    # Laparotomy, exploratory - see Inspection, Peritoneal Cavity 0WJG: a laparotomy is open (0)
    "0WJG0ZZ": ("exploratory laparotomy", "explorative laparotomy"),
    # a rectal examination inspects the rectum by touch (Examination - see Inspection; Inspection,
    # Intestinal Tract, Lower 0DJD, external X): CodiEsp codes it 0DJDXZZ in 9 of 15 train notes
    "0DJDXZZ": ("rectal examination", "rectal exam", "digital rectal examination", "digital rectal exam",
                "rectal touch"),
    # Hemodialysis - see Performance, Urinary 5A1D; notes say "dialysis" (peritoneal dialysis has
    # its own index term, a longer match)
    "5A1D": ("dialysis", "dialysis session", "dialysis sessions"),
    # a transurethral resection removes a tumor or part of the organ through the urethra
    # (ICD-10-PCS B3.8: Excision), endoscopically via a natural opening (8): bladder 0TBB8ZZ,
    # prostate 0VB08ZZ (the table prefix and the index's "Resection" read them as the whole organ)
    "0TBB8ZZ": ("transurethral resection of bladder tumor", "transurethral resection of the bladder",
                "transurethral resection of bladder", "transurethral bladder resection",
                "transurethral resection of the bladder tumor", "transurethral resection of bladder lesion"),
    "0VB08ZZ": ("transurethral resection of prostate", "transurethral resection of the prostate",
                "transurethral prostate resection", "prostate transurethral resection"),
    # Echocardiography, transesophageal: Ultrasonography, Heart, Right and Left, qualifier 4
    "B246ZZ4": ("transesophageal echocardiogram", "transesophageal echocardiography", "transoesophageal echocardiogram",
                "transesophageal ultrasound"),
    # Plasmapheresis, therapeutic - see Pheresis, Circulatory 6A55: single (0), plasma (3)
    "6A550Z3": ("plasmapheresis", "plasma exchange", "plasmapheresis sessions"),
    # Electromyography - see Measurement, Musculoskeletal 4A0F: external (X), contractility (3)
    "4A0FX3Z": ("electromyography", "electromyogram", "electromyographic study", "emg"),
    # Scan, bone - see Planar Nuclear Medicine Imaging, Musculoskeletal System CP1
    "CP1Z": ("bone scintigraphy", "bone scan", "bone gammagraphy", "bone scintiscan", "skeletal scintigraphy"),
    # Puncture, lumbar - see Drainage, Spinal Canal 009U: percutaneous (3), diagnostic (X)
    "009U3ZX": ("lumbar puncture", "spinal tap"),
    # the fundus of an eye examined (Inspection, Eye, Right 08J0XZZ / Left 08J1XZZ, external); an
    # examination that names no eye is of both, as a fundus examination is
    "08J0XZZ": ("right eye fundus", "fundus of the right eye", "right fundus", *_FUNDUS),
    "08J1XZZ": ("left eye fundus", "fundus of the left eye", "left fundus", *_FUNDUS),
}

# Imaging modalities by ICD-10-PCS section B "Type" axis value (ICD-10-PCS Tables, section B:
# 0 Plain Radiography, 1 Fluoroscopy, 2 CT, 3 MRI, 4 Ultrasonography) and how notes word them.
IMAGING_MODALITIES: dict[str, tuple[str, ...]] = {
    "0": ("x-ray", "x ray", "xray", "radiograph", "radiography", "radiology", "plain film", "rx", "radiological study"),
    "1": ("fluoroscopy", "angiography", "arteriography", "venography", "phlebography", "cholangiography",
          "urethrography", "cystography", "esophagogram", "barium"),
    "2": ("ct", "computed tomography", "computerized tomography", "tomography", "ct scan", "cat scan", "scanner",
          "angio-ct", "angiotac", "tac"),
    "3": ("mri", "magnetic resonance", "magnetic resonance imaging", "nuclear magnetic resonance", "mr", "nmr",
          "resonance"),
    "4": ("ultrasound", "ultrasonography", "ultrasonographic", "echography", "ecography", "sonography",
          "echo", "doppler", "echocardiography", "echocardiogram", "eco"),
}

# Extra names of body regions as notes write them (key: words of a PCS body-part value). "Cranial"
# is the skull (the normaliser's reading: BN20 "CT of skull") or, for an MRI, the brain; not the
# whole head (BW28), which CodiEsp's coders never code for "TAC craneal" (BN20 27 times on train).
_REGION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "chest": ("thorax", "thoracic", "thoracic-abdominal", "lung", "lungs", "pulmonary"),
    "abdomen": ("abdominal",),
    "abdomen and pelvis": ("abdominopelvic", "abdominal-pelvic", "abdomino-pelvic", "abdomen-pelvis"),
    "chest and abdomen": ("thoracoabdominal", "thoraco-abdominal", "thoracic-abdominal"),
    "chest abdomen and pelvis": ("thoracoabdominopelvic", "thoraco-abdomino-pelvic", "thoracoabdominal-pelvic",
                                 "thoraco-abdominal-pelvic", "thoracic-abdominal-pelvic", "chest-abdomen-pelvis"),
    "brain": ("cerebral", "cranial", "encephalic"),
    "pelvis": ("pelvic",),
    "heart": ("cardiac",),
    "kidney": ("renal",),
    "kidneys": ("renal",),
    "neck": ("cervical",),
    "spinal cord": ("spinal",),
    "liver": ("hepatic",),
    "scrotum": ("scrotal", "testicular", "testis", "testes", "testicle", "testicles"),
}


def _clean_region(meaning: str) -> str:
    m = re.sub(r"\(.*?\)", "", meaning).strip()
    m = re.sub(r"\s+and\s*$", "", m, flags=re.I)
    m = m.replace(",", " ")
    return re.sub(r"\s+", " ", m).strip().lower()


def _body_part_nodes(kb: Any, want: Any) -> Iterator[tuple[str, str]]:
    """``(code, body part)`` of the first ICD-10-PCS code under each 4-character node that
    ``want(code)`` accepts (the body part cleaned by :func:`_clean_region`)."""
    seen: set[str] = set()
    for c in kb.codes(CodeSystem.ICD10PCS):
        code = c.code
        if code[:4] in seen or not want(code):
            continue
        seen.add(code[:4])
        yield code, _clean_region(next((m for (name, _, m) in c.axes if name == "Body Part"), ""))


def biopsy_entries(kb: Any) -> Iterator[tuple[str, str]]:
    """``("liver biopsy", "0FB0")``...: a biopsy is an Excision with the qualifier Diagnostic
    (ICD-10-PCS Index: Biopsy - see Excision with qualifier Diagnostic), so every Excision node
    of the medical and surgical section (``0?B?``) gets "<body part> biopsy" and "biopsy of
    <body part>", with and without its laterality."""
    for code, part in _body_part_nodes(kb, lambda code: code.startswith("0") and code[2:3] == "B"):
        if not part:
            continue
        base = " ".join(w for w in part.split() if w not in ("left", "right", "bilateral"))
        for r in {part, base} - {""}:
            for phrase in (f"{r} biopsy", f"biopsy of {r}", f"biopsy {r}"):
                yield phrase, code[:4]


def _unsided(region: str) -> str:
    return " ".join(w for w in region.split() if w not in ("left", "right", "bilateral", "single", "multiple"))


def _singular(words: str) -> str:
    return words[:-1] if words.endswith("s") and len(words) > 3 else words


#: "Cranial" names the brain only for the modalities the skull has no table for (MRI, B030):
#: CodiEsp's coders code "TAC craneal" as the skull (BN20) 27 times on train, the brain (B020) never.
_SKULL_WORDS = frozenset({"cranial", "cranium"})
_SKULL_TYPES = "02"


def imaging_entries(kb: Any) -> Iterator[tuple[str, str]]:
    """Generated ``(phrase, code)`` pairs for imaging: modality x body region -> section B code.

    Each 4-character section B node (section, body system, type, body part, e.g. ``BW20``
    "Computerized Tomography (CT Scan), Abdomen") gives phrases "ct abdomen", "abdomen ct",
    "abdominal ultrasound"... built from the PCS tables' axes and the synonyms above.
    """
    nodes = [(code, region) for code, region in _body_part_nodes(
        kb, lambda code: code.startswith("B") and code[2] in IMAGING_MODALITIES) if region and region not in ("other", "none")]
    # a table's paired organs with a "bilateral" node: an unlateralised "renal ultrasound" is that
    # node (both kidneys are imaged), not the right and the left one as well
    bilateral = {(code[:3], _singular(_unsided(region))) for code, region in nodes if "bilateral" in region.split()}
    for code, region in nodes:
        typ = code[2]
        base = _unsided(region)
        regions = {region, *_REGION_SYNONYMS.get(region, ())}
        one_side = bool({"left", "right"} & set(region.split()))
        if base and base != region and not (one_side and (code[:3], _singular(base)) in bilateral):
            regions |= {base, *_REGION_SYNONYMS.get(base, ())}
            if base.endswith("s") and len(base) > 4:
                regions |= {base[:-1], *_REGION_SYNONYMS.get(base[:-1], ())}
        for r in regions:
            if r in _SKULL_WORDS and typ in _SKULL_TYPES:
                continue  # a cranial CT or X-ray images the skull (BN20, BN00), which has its own node
            for mod in IMAGING_MODALITIES[typ]:
                yield f"{mod} {r}", code[:4]
                yield f"{r} {mod}", code[:4]


@dataclass(slots=True)
class DictHit:
    """One dictionary match of a code in the note (used as candidate evidence).

    Attributes:
        code: the code as the knowledge base writes it (``E79.0``, ``BW03``); incomplete
            index codes are cut to their complete part (``D49.51-`` -> ``D49.51``).
        system: ``icd10cm`` | ``icd10pcs``.
        source: term source (``index``, ``tabular``, ``imaging``...).
        incomplete: the index pointed to a code needing more characters.
        start / end / text: the mention's offsets and text.
        phrase: the normalised dictionary phrase matched.
        score: 1.0 exact, lower for a bag-of-words match.
        n_tokens: tokens in the phrase.
        subsumed: the match lies inside a longer match.
        specified: a longer match over it names a more specific form of its phrase
            (:attr:`opencac.nlp.matcher.Mention.specified`).
        assertion / trigger / section / sentence / attributes: from the mention.
    """

    code: str
    system: str
    source: str
    incomplete: bool
    start: int
    end: int
    text: str
    phrase: str
    score: float
    n_tokens: int
    subsumed: bool
    assertion: str
    trigger: str | None
    section: str
    sentence: int
    attributes: dict[str, str] = field(default_factory=dict)
    specified: bool = False


# Receptor-status shorthands such as "HR+" / "ER-" (Z17.-) collapse to a bare abbreviation
# once the sign is folded away ("HR" -> "heart rate"), so they are left to the index.
_SIGNED_ABBREV = re.compile(r"^[A-Za-z0-9]{1,5}\s*[+-]$")


_PARENTHESES = re.compile(r"\([^)]*\)|\[[^\]]*\]")


def _foreign_abbreviation(kb: Any, phrase: str, code: str, system: str) -> bool:
    """The term is one abbreviation that the normaliser reads as another concept: the index's
    "TAC" (trigeminal autonomic cephalgia, G44.099) would become "computerized tomography" (TAC is
    CT in Spanish notes) and match every CT. Its expansion shares no word with the code's title."""
    from opencac.nlp.normalize import ABBREVIATIONS

    words = re.findall(r"[A-Za-z0-9]+", _PARENTHESES.sub(" ", phrase))
    if len(words) != 1 or words[0].lower() not in ABBREVIATIONS:
        return False
    found = kb.find(code, system)
    title = set(re.findall(r"[a-z]+", (found.description if found is not None else "").lower()))
    title |= set(re.findall(r"[a-z]+", phrase.lower())) - {words[0].lower()}
    return not set(re.findall(r"[a-z]+", ABBREVIATIONS[words[0].lower()])) & title


#: A manifestation code's title: "Glomerular disorders in diseases classified elsewhere", "Other
#: neurologic disorders in Lyme disease".
_MANIFESTATION_TITLE = re.compile(r"\bin (?:[\w-]+ )*?(?:diseases?|infections?|conditions?)\b|classified elsewhere",
                                  re.IGNORECASE)


def _manifestation_without_cause(kb: Any, phrase: str, code: str, system: str) -> bool:
    """The term is an inclusion term of a manifestation code that names the manifestation alone
    (one or two words, none of the title's): N08's "Nephropathy", N16's "Pyelonephritis", A69.22's
    "Polyneuropathy" hold only in the disease the title names, and as entries of their own made
    every nephropathy N08 and every pyelonephritis N16 (the index sends them to N28.9 and N12)."""
    found = kb.find(code, system)
    if found is None or not _MANIFESTATION_TITLE.search(found.description):
        return False
    words = set(re.findall(r"[a-z]+", _PARENTHESES.sub(" ", phrase).lower()))
    return len(words) <= 2 and not words & set(re.findall(r"[a-z]+", found.description.lower()))


#: ICD-10-PCS index terms that name a vital sign every note records: the index's "Blood pressure"
#: (see Measurement, Arterial, 4A03) read every "blood pressure was 120/45 mmHg" as a procedure.
_PCS_VITAL_SIGNS = frozenset({"blood pressure"})


def _short_form(phrase: str, stopwords: Iterable[str] = ()) -> str:
    """The normalised form of a term of at most 30 characters, "" for a longer one: the terms
    read as something else (:func:`_vital_sign`, :func:`_other_reading`) are all short."""
    if len(phrase) > 30:
        return ""
    from opencac.nlp.normalize import normalize_phrase

    return normalize_phrase(phrase, stopwords)


def _vital_sign(phrase: str) -> bool:
    """The term names one of :data:`_PCS_VITAL_SIGNS` ("Blood pressure", "BP (blood pressure)")."""
    return " ".join(dict.fromkeys(_short_form(phrase).split())) in _PCS_VITAL_SIGNS


#: ICD-10-CM index terms that, written in a note, name something else: anatomy ("Middle lobe
#: (right)", J98.19, the middle lobe syndrome, is where a lung nodule lies; "both hypochondria" are
#: abdominal regions, the index's "Hypochondria" is hypochondriasis, F45.21, which keeps its other
#: spellings; "dilated intestinal loops" are the bowel, not "Loop, intestine - see Volvulus", K56.2)
#: or a heading ("History, personal, specified NEC" Z87.898 as a bag of words is every "Personal
#: history:" line), or prose ("Old (previous)" myocardial infarction, I25.2, cut to its modifiers, is
#: "an old man with a previous ...", and T41.3's inclusion term "cocaine", a topical anesthetic's
#: poisoning, is every cocaine user; N42.31's inclusion term "PIN", prostatic intraepithelial
#: neoplasia, is every Kirschner "pin" of a fracture's fixation; R54's "Old age", as a bag of words,
#: is every "a 52-year-old man ... at age 8").
_OTHER_READINGS = frozenset({"middle lobe", "middle lobe right", "middle right lobe", "hypochondria",
                             "loop intestine", "intestine loop", "history personal specified", "old previous",
                             "previous old", "cocaine", "pin", "old age"})


def _other_reading(phrase: str) -> bool:
    from opencac.nlp.matcher import MATCH_STOPWORDS

    return _short_form(phrase, MATCH_STOPWORDS) in _OTHER_READINGS


def _entries(kb: Any, sources: frozenset[str]) -> Iterator[tuple[str, tuple[str, str, int]]]:
    for t in kb.terms():
        if (t.source not in sources and not (t.source == "drug" and t.code.startswith("Z79"))
                or _SIGNED_ABBREV.match(t.phrase.strip())):
            # the drug table's long-term-use status of a drug is matched where its poisoning
            # phrases are not (opencac.codesets.cmindex.long_term_therapy)
            continue
        if t.system is CodeSystem.ICD10PCS and _vital_sign(t.phrase):
            continue
        if t.system is CodeSystem.ICD10CM and (_foreign_abbreviation(kb, t.phrase, t.code, t.system.value)
                                                or _other_reading(t.phrase)):
            continue
        if t.source == "inclusion" and t.system is CodeSystem.ICD10CM and _manifestation_without_cause(
                kb, t.phrase, t.code, t.system.value):
            continue
        yield t.phrase, (t.code, t.system.value, _SOURCE_ID.get(t.source, 9))
    if "imaging" in sources:
        for phrase, code in imaging_entries(kb):
            yield phrase, (code, "icd10pcs", _SOURCE_ID["imaging"])
    if "clinical" in sources:
        for table, system in ((CLINICAL_PHRASES, "icd10cm"), (CLINICAL_PROCEDURES, "icd10pcs")):
            for code, phrases in table.items():
                if kb.find(code) is None:
                    continue
                for phrase in phrases:
                    yield phrase, (code, system, _SOURCE_ID["clinical"])
    if "pcs-table" in sources:
        for phrase, code in biopsy_entries(kb):
            yield phrase, (code, "icd10pcs", _SOURCE_ID["pcs-table"])


_LOCK = threading.Lock()
_MATCHERS: dict[str, Any] = {}


def _kb_key(kb: Any) -> str:
    h = hashlib.sha256()
    for k, v in sorted(kb.versions.items()):
        h.update(f"{k}:{v.fiscal_year}:{v.source}:{v.sha256}:{sorted(v.extra.items())}".encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _normalizer_key() -> str:
    """Fingerprint of what the compiled matcher depends on besides the knowledge base: the text
    normaliser's source (its phrases are stored normalised: abbreviations, synonyms), this
    module's source (which terms become entries), the matcher's stop lists and its bag rules. Any
    change to them rebuilds it."""
    import importlib

    from opencac.nlp import matcher

    module = importlib.import_module("opencac.nlp.normalize")  # the package exports a function of that name
    h = hashlib.sha256(Path(str(module.__file__)).read_bytes())
    h.update(Path(__file__).read_bytes())
    h.update(" ".join(sorted(matcher.DEFAULT_STOP_PHRASES | {f"/{w}" for w in matcher.MATCH_STOPWORDS})).encode())
    # which phrases are matched as bags of words, and the file's format
    h.update(repr((sorted(matcher.BAG_RULES), matcher.FORMAT_VERSION)).encode())
    return h.hexdigest()[:8]


def get_matcher(kb: Any, sources: Iterable[str] = DEFAULT_SOURCES, cache_dir: Path | None = None) -> Any:
    """The dictionary matcher for ``kb`` (built once, cached on disk and in the process).

    Args:
        kb: the knowledge base.
        sources: term sources to include.
        cache_dir: where to cache (default: the code-set cache directory).
    """
    from opencac.nlp.matcher import MentionMatcher

    srcs = frozenset(sources)
    key = f"{_kb_key(kb)}-{hashlib.sha256(','.join(sorted(srcs)).encode()).hexdigest()[:8]}-v13-{_normalizer_key()}"
    with _LOCK:
        if key in _MATCHERS:
            return _MATCHERS[key]
        if cache_dir is None:
            from opencac.codesets import config

            cache_dir = config.cache_dir(None) / "engine"
        path = Path(cache_dir) / f"dictionary-{key}.pkl"
        m = None
        if path.is_file():
            try:
                m = MentionMatcher.load(path)
                os.utime(path)  # recently used: kept when older dictionaries are removed
            except Exception:  # a stale or partial cache file: rebuild it
                m = None
        if m is None:
            m = MentionMatcher.build(_entries(kb, srcs))
            path.parent.mkdir(parents=True, exist_ok=True)
            m.save(path)  # atomic: another process may be writing the same file
            prune_dictionaries(path.parent)
        _MATCHERS[key] = m
        return m


#: Cached dictionaries kept, most recently used first. Each is 70-140 MB, and every new code-set
#: version, term source set or normaliser makes a new one (a knowledge base of another key, an
#: upgrade): without pruning they pile up in the cache directory.
DICTIONARY_CACHE_KEEP = 4


def prune_dictionaries(folder: Path, keep: int = DICTIONARY_CACHE_KEEP) -> list[Path]:
    """Delete all but the ``keep`` most recently used ``dictionary-*.pkl`` files of ``folder``
    (a load refreshes a file's time); returns the files deleted."""
    gone: list[Path] = []
    try:
        files = sorted(folder.glob("dictionary-*.pkl"), key=lambda q: q.stat().st_mtime, reverse=True)
        for old in files[max(keep, 1):]:
            old.unlink(missing_ok=True)
            gone.append(old)
    except OSError:  # another process pruning or building at the same time: try again next build
        pass
    return gone


_SOURCE_NAME = {v: k for k, v in _SOURCE_ID.items()}


def hits_from_mentions(mentions: Iterable[Any]) -> list[DictHit]:
    """Turn matcher mentions into per-code hits (one per mention x payload)."""
    out: list[DictHit] = []
    for m in mentions:
        n_tok = len(m.phrase.split())
        seen: set[tuple[str, str]] = set()
        for code, system, sid in m.payloads:
            incomplete = code.endswith("-") or (system == "icd10pcs" and len(code) < 7)
            c = code.rstrip("-").rstrip(".")
            if not c or (c, system) in seen:
                continue
            seen.add((c, system))
            out.append(DictHit(c, system, _SOURCE_NAME.get(sid, "other"), incomplete, m.start, m.end, m.text,
                               m.phrase, float(m.score), n_tok, bool(m.subsumed), m.assertion, m.trigger,
                               m.section, m.sentence, dict(m.attributes), bool(m.specified)))
    return out


_LATERAL = frozenset({"left", "right", "bilateral"})
_BP_STOP = frozenset({"and", "or", "of", "the", "with", "to", "other", "nos", "lower", "upper", "region"})


def _stem(w: str) -> str:
    w = w.lower()
    for suf in ("ies", "es", "s"):
        if len(w) > 4 and w.endswith(suf):
            return w[: -len(suf)] + ("y" if suf == "ies" else "")
    return w


_BODY_ADJ = {"renal": "kidney", "hepatic": "liver", "pulmonary": "lung", "cardiac": "heart", "gastric": "stomach",
             "cerebral": "brain", "thoracic": "chest", "abdominal": "abdomen", "pelvic": "pelvis",
             "vesical": "bladder", "colonic": "colon", "testicular": "testis", "ovarian": "ovary",
             "thyroid": "thyroid", "nasal": "nasal", "cutaneous": "skin", "dermal": "skin"}


#: The body part a surgical word names ("left nephrectomy": the kidney), for the words that end in
#: a procedure suffix; the first matching root wins ("cholecystectomy" is no cystectomy).
_PROCEDURE_ROOTS = (("cholecyst", ("gallbladder",)), ("nephroureter", ("kidney", "ureter")), ("nephr", ("kidney",)),
                    ("pyel", ("kidney", "pelvis")), ("ureter", ("ureter",)), ("cyst", ("bladder",)),
                    ("hepat", ("liver",)), ("splen", ("spleen",)), ("gastr", ("stomach",)), ("col", ("colon",)),
                    ("append", ("appendix",)), ("pancrea", ("pancreas",)), ("prostat", ("prostate",)),
                    ("orchi", ("testis",)), ("oophor", ("ovary",)), ("salping", ("fallopian", "tube")),
                    ("hyster", ("uterus",)), ("mast", ("breast",)), ("thyroid", ("thyroid",)),
                    ("adrenal", ("adrenal", "gland")), ("pneumon", ("lung",)))
_PROCEDURE_SUFFIX = re.compile(r"(?:ectomy|ostomy|otomy|plasty|pexy|rrhaphy|scopy|tripsy)$")


def _procedure_body_words(word: str) -> tuple[str, ...]:
    if _PROCEDURE_SUFFIX.search(word):
        for root, body in _PROCEDURE_ROOTS:
            if word.startswith(root):
                return body
    return ()


_CHILDREN_CACHE: dict[int, tuple[Any, dict[str, list[tuple[Any, str, list[str]]]]]] = {}


def _body_part_children(kb: Any, code: str) -> list[tuple[Any, str, list[str]]]:
    """The 4-character children of a 3-character PCS node with their body-part words
    ``(child, description tail, stemmed words)``, memoised per knowledge-base object:
    ``kb.children`` of a PCS node scans every node, and the same nodes recur in every note."""
    ent = _CHILDREN_CACHE.get(id(kb))
    if ent is None or ent[0] is not kb:
        ent = _CHILDREN_CACHE[id(kb)] = (kb, {})
    cache = ent[1]
    got = cache.get(code)
    if got is None:
        got = []
        try:
            children = kb.children(code)
        except Exception:
            children = []
        for ch in children:
            desc = ch.description.split(",", 1)[-1]
            toks = [_stem(w) for w in re.findall(r"[A-Za-z]+", desc) if w.lower() not in _BP_STOP]
            if toks:
                got.append((ch, desc, toks))
        cache[code] = got
    return got


#: ICD-10-PCS root operations whose name is also a finding's name: Dilation (``7``) and
#: Occlusion (``L``) in the Medical and Surgical section. "CT showed dilation of the pancreatic
#: duct" reports what a study saw, not a procedure: the root operation Dilation is "expanding an
#: orifice or the lumen of a tubular body part", something done (ICD-10-PCS Guidelines A.11: the
#: coder determines what the documentation equates to in the PCS definitions).
_FINDING_OPERATIONS = frozenset({"7", "L"})
_FINDING_WORD = re.compile(r"\b(?:dilat(?:ion|ions|ation|ations|ed)|occlu(?:sion|sions|ded))\b", re.I)
# a sentence that reports what a study or an examination saw
_STUDY_REPORT = re.compile(
    r"\b(?:show(?:s|ed|ing|n)?|reveal(?:s|ed|ing)?|present(?:s|ed|ing)|visuali[sz](?:ed|es|ing)|observed|objectified|"
    r"described|evidenced|demonstrat(?:ed|es|ing)|identified|detected|seen|noted|compatible with|suggestive of|"
    r"diagnos(?:ed|is|es)|consistent with|ct|mri|tomograph\w*|magnetic resonance|ultraso\w+|sonograph\w*|echograph\w*|x-?rays?|"
    r"radiograph\w*|urograph\w*|cystograph\w*|cystourethrograph\w*|angiograph\w*|scan|scintigraph\w*|"
    r"imaging|images?)\b", re.I)
# words that make the dilation or occlusion something done to the patient
_DONE_BEFORE = re.compile(
    r"\b(?:balloon|pneumatic|bougie|hydrostatic|mechanical|endoscopic|percutaneous|surgical|instrumental|"
    r"underwent|undergo|undergoes|perform(?:s|ed)?|required|requiring|proceeded to|therapeutic|"
    r"embolization|coil|ligation|treated by|treated with|by means of)\W+(?:\w+\W+){0,2}$", re.I)
_DONE_AFTER = re.compile(
    r"^\W*(?:\w+\W+){0,5}?(?:was|were|is|are) (?:performed|carried out|done|achieved|attempted)\b|"
    r"^\W*(?:\w+\W+){0,4}?(?:with|using) (?:an? )?(?:balloons?|bougies?|dilators?|stents?|coils?|catheters?)\b", re.I)


def _sentence_bounds(doc: Any, h: DictHit) -> tuple[int, int]:
    """Offsets of the sentence a hit lies in (the hit's own span when the document has none)."""
    if doc.sentences and 0 <= h.sentence < len(doc.sentences):
        s = doc.sentences[h.sentence]
        return s.start, s.end
    return h.start, h.end


def drop_study_findings(doc: Any, hits: list[DictHit]) -> list[DictHit]:
    """Drop ICD-10-PCS Dilation / Occlusion hits read from a finding that a study or an
    examination reported ("the abdominal CT showed dilation of the pancreatic duct"): the
    sentence reports an observation and nothing next to the word says it was done
    ("balloon dilation", "dilation was performed"). Other readings of the same words, a
    diagnosis code for instance, stay."""
    out: list[DictHit] = []
    text = doc.text
    for h in hits:
        if (h.system == "icd10pcs" and len(h.code) >= 3 and h.code[0] == "0" and h.code[2] in _FINDING_OPERATIONS):
            m = _FINDING_WORD.search(h.text)
            if m is not None:
                at = h.start + m.start()
                lo, hi = _sentence_bounds(doc, h)
                sentence = text[lo:hi]
                end = h.start + m.end()
                before = text[max(lo, at - 60):at]
                # "an ultrasound was performed, which showed dilation": what was done is the study
                seen_at = [r.end() for r in _STUDY_REPORT.finditer(before)]
                if seen_at:
                    before = before[seen_at[-1]:]
                if ((h.section == "imaging" or _STUDY_REPORT.search(sentence))
                        and not _DONE_BEFORE.search(before)
                        and not _DONE_AFTER.search(text[end:min(hi, end + 60)])):
                    continue
        out.append(h)
    return out


# a sentence that says the study used contrast ("CT with contrast", "contrast-enhanced MRI")
_CONTRAST_GIVEN = re.compile(
    r"\b(?:with|after|using|following|plus)\s+(?:\w+\s+){0,2}contrast\b|\bcontrast[- ]enhanced\b|"
    r"\b(?:iodinated|intravenous|iv|gadolinium)\s+contrast\b|\bgadolinium\b", re.I)
_CONTRAST_DENIED = re.compile(r"\b(?:without|no)\s+(?:\w+\s+){0,2}contrast\b|\bnon[- ]?contrast\b|"
                              r"\bunenhanced\b", re.I)


def drop_contrast_conflicts(doc: Any, hits: list[DictHit]) -> list[DictHit]:
    """Drop complete ICD-10-PCS imaging codes whose contrast axis is "None" (``BW21ZZZ``) read
    in a sentence that says the study used contrast ("abdominal-pelvic CT with contrast"): the
    contrast value (high or low osmolar, other) is what the coder completes; the table prefix
    (``BW21``) stays, marked ``attributes["contrast"] = "given"`` so that no "ZZZ" completion is
    made from it. A sentence that says no contrast was used marks its imaging hits
    ``attributes["contrast"] = "none"``. PCS imaging, 5th character: 0 high osmolar, 1 low
    osmolar, Y other, Z none."""
    out: list[DictHit] = []
    said: dict[int, str] = {}
    for h in hits:
        if h.system == "icd10pcs" and h.code[:1] == "B" and len(h.code) >= 4:
            if h.sentence not in said:
                lo, hi = _sentence_bounds(doc, h)
                txt = doc.text[lo:hi]
                denied = bool(_CONTRAST_DENIED.search(txt))
                said[h.sentence] = "none" if denied else "given" if _CONTRAST_GIVEN.search(txt) else ""
            if said[h.sentence] == "given":
                if len(h.code) == 7 and h.code[4] == "Z":
                    continue
                h.attributes["contrast"] = "given"
            elif said[h.sentence] == "none":
                h.attributes["contrast"] = "none"  # "CT without contrast": the "Z" of a complete code is stated
        out.append(h)
    return out


# words that state a procedure's approach (ICD-10-PCS 5th character of the medical and surgical
# section): laparoscopic / thoracoscopic / arthroscopic / endoscopic -> 4 percutaneous endoscopic,
# percutaneous -> 3
_APPROACH = (r"(?:(?:laparoscop|thoracoscop|arthroscop|retroperitoneoscop|endoscop)\w*|video[- ]assisted|"
             r"(?P<perc>percutaneous(?:ly)?))")
# the word modifies the procedure: right before it ("laparoscopic left cholecystectomy"), or after
# it as "by / via / through / using (a) laparoscopy" or an adverb ("performed laparoscopically")
_APPROACH_BEFORE = re.compile(r"\b" + _APPROACH + r"(?:[ -]+\w+){0,2}?[ -]*$", re.I)
_APPROACH_AFTER = re.compile(
    r"^\W*(?:\w+\W+){0,4}?(?:(?:by|via|through|using|under)\s+(?:an?\s+)?" + _APPROACH
    + r"|(?:laparoscop|thoracoscop|arthroscop|endoscop|percutaneous)\w*ally)\b", re.I)
_OPEN_WORDS = re.compile(r"\b(?:open|conver(?:ted|sion)|laparotomy|thoracotomy)\b", re.I)
_CONVERTED_TO_OPEN = re.compile(r"\bconver(?:ted|sion)\b(?:\W+\w+){0,4}?\W+open\b", re.I)


def apply_stated_approach(doc: Any, hits: list[DictHit], kb: Any) -> list[DictHit]:
    """Give a complete ICD-10-PCS medical and surgical code the approach (its 5th character) the
    note states for it:

    - read with the open approach (0) and modified by "laparoscopic", "thoracoscopic",
      "arthroscopic", "endoscopic" (4) or "percutaneous" (3): the word right before the mention,
      or after it as "by / via / through laparoscopy" or an adverb ("laparoscopically"). The
      index's "Cholecystectomy" is 0FT40ZZ, "cholecystectomy ... by laparoscopy" 0FT44ZZ;
    - read with the percutaneous endoscopic approach (4) in a sentence that says the procedure
      was converted to open: the open approach is coded (ICD-10-PCS guidelines, "procedure
      converted to a different approach": the laparoscopic attempt is an inspection).

    The code with the new approach must be valid; otherwise the hit is kept as read. A code read
    with the open approach in a sentence that names no open approach (open, laparotomy,
    thoracotomy, converted) is marked ``attributes["approach"] = "assumed"``."""
    out: list[DictHit] = []
    text = doc.text
    for h in hits:
        if h.system == "icd10pcs" and len(h.code) == 7 and h.code[0] == "0" and h.code[4] in "04":
            lo, hi = _sentence_bounds(doc, h)
            sentence = text[lo:hi]
            open_said = bool(_OPEN_WORDS.search(sentence))
            approach, why = "", ""
            if h.code[4] == "4":
                m = _CONVERTED_TO_OPEN.search(sentence)
                if m is not None:
                    approach, why = "0", "converted to open"
            else:
                m = (_APPROACH_BEFORE.search(text[max(lo, h.start - 40):h.start])
                     or _APPROACH_AFTER.search(text[h.end:min(hi, h.end + 60)]))
                if m is not None and not open_said:
                    perc = bool(m.group("perc")) or "percutaneous" in m.group(0).lower()
                    approach, why = ("3" if perc else "4"), " ".join(m.group(0).lower().split())
            code = h.code[:4] + approach + h.code[5:]
            if approach and kb is not None and kb.find(code, "icd10pcs") is not None:
                h = replace(h, code=code, phrase=f"{h.phrase} + {why}", attributes=dict(h.attributes))
            elif h.code[4] == "0" and not open_said:
                # the open approach is the index's reading, not the note's: the coder confirms it
                h = replace(h, attributes={**h.attributes, "approach": "assumed"})
        out.append(h)
    return out


_PARTIAL_WORDS = re.compile(r"\b(?:partial|partially|subtotal|segmental|wedge)\b", re.IGNORECASE)


def mark_extent(doc: Any, hits: list[DictHit]) -> list[DictHit]:
    """Where one mention reads as both an Excision and a Resection of the same body system
    (the index's "Splenectomy - see Excision, Spleen 07BP; see Resection, Spleen 07TP"), the
    note's words choose: "partial", "subtotal", "segmental" or "wedge" near the mention make it
    an excision (ICD-10-PCS B3.8: a portion of the body part), else the whole body part was
    removed, a resection. The other reading is marked ``attributes["extent"] = "other"``."""
    spans: dict[tuple[int, int], list[int]] = {}
    for i, h in enumerate(hits):
        if h.system == "icd10pcs" and h.code[:1] == "0" and len(h.code) >= 3 and h.code[2] in "BT":
            spans.setdefault((h.start, h.end), []).append(i)
    if not spans:
        return hits
    out = list(hits)
    text = doc.text
    for (start, end), idx in spans.items():
        systems = {hits[i].code[1] for i in idx if hits[i].code[2] == "B"} & \
            {hits[i].code[1] for i in idx if hits[i].code[2] == "T"}
        if not systems:
            continue
        partial = bool(_PARTIAL_WORDS.search(text[max(0, start - 40):min(len(text), end + 20)]))
        other = "T" if partial else "B"
        for i in idx:
            if hits[i].code[1] in systems and hits[i].code[2] == other:
                out[i] = replace(hits[i], attributes={**hits[i].attributes, "extent": "other"})
    return out


def expand_pcs_hits(doc: Any, hits: list[DictHit], kb: Any) -> list[DictHit]:
    """Complete 3-character ICD-10-PCS index hits (section, body system, root operation, e.g.
    ``0F9`` "drainage") with the body parts the same sentence names: each 4-character child
    of the table (``0F90`` "Drainage, Liver") whose body-part words (laterality included)
    occur in the sentence becomes a hit of its own (source ``pcs-bodypart``, score 0.8).
    ICD-10-PCS Official Guidelines B3.1-B4: the body part axis is the fourth character."""
    extra: list[DictHit] = []
    sent_words: dict[int, set[str]] = {}
    seen: set[tuple[str, int]] = set()
    for h in hits:
        if h.system != "icd10pcs" or len(h.code) != 3 or (h.code, h.sentence) in seen:
            continue
        seen.add((h.code, h.sentence))
        if h.sentence not in sent_words:
            lo, hi = _sentence_bounds(doc, h)
            txt = doc.text[lo:hi]
            raw = re.findall(r"[A-Za-z]+", txt)
            words = {_stem(w) for w in raw}
            words |= {_BODY_ADJ[w] for w in list(words) if w in _BODY_ADJ}
            # "left nephrectomy" names the left kidney
            words |= {_stem(b) for w in raw for b in _procedure_body_words(w.lower())}
            sent_words[h.sentence] = words
        words = sent_words[h.sentence]
        for ch, desc, toks in _body_part_children(kb, h.code):
            if all(t in words for t in toks) or (
                    all(t in words for t in toks if t not in _LATERAL) and not any(t in _LATERAL for t in toks)):
                extra.append(replace(h, code=ch.code, source="pcs-bodypart", incomplete=True,
                                     phrase=h.phrase + " + " + desc.strip().lower(), score=0.8 * h.score,
                                     n_tokens=h.n_tokens + 1, attributes=dict(h.attributes)))
    return hits + extra
