"""Text normalisation with an offset map back to the original text.

``normalize(text)`` lowercases, folds punctuation to single spaces, handles hyphens,
expands common clinical abbreviations, folds British spellings and plurals (a light,
rule-based stemmer), and returns the normalised text together with an offset map so that
every token-aligned match in the normalised text maps back to exact original offsets.

Offset map contract (``norm, omap = normalize(text)``):

* ``len(omap) == len(norm) + 1``.
* For a character inside a normalised token, ``omap[i]`` is an offset inside the original
  token it came from (the first character of a token maps to the token's first original
  character).
* For a separating space (and for the final sentinel ``omap[len(norm)]``), ``omap[i]`` is
  the end offset of the original token *before* it.

So a match ``norm[ns:ne]`` that starts and ends on token boundaries covers
``text[omap[ns]:omap[ne]]`` - exactly the original tokens, including any characters the
normaliser dropped inside them (a plural ``s``, an expanded abbreviation...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["ABBREVIATIONS", "Token", "normalize", "normalize_phrase", "stem", "tokenize"]

# --- abbreviations ------------------------------------------------------------------------
# Expanded whatever their case (unambiguous in clinical text).
_ABBR_ANY: dict[str, str] = {
    "htn": "hypertension",
    "dm": "diabetes mellitus",
    "dm1": "diabetes mellitus type 1",
    "dm2": "diabetes mellitus type 2",
    "t1dm": "diabetes mellitus type 1",
    "t2dm": "diabetes mellitus type 2",
    "iddm": "insulin dependent diabetes mellitus",
    "niddm": "non-insulin dependent diabetes mellitus",
    "chf": "congestive heart failure",
    "hf": "heart failure",
    "hfref": "heart failure with reduced ejection fraction",
    "hfpef": "heart failure with preserved ejection fraction",
    "copd": "chronic obstructive pulmonary disease",
    "ckd": "chronic kidney disease",
    "esrd": "end stage renal disease",
    "aki": "acute kidney injury",
    "arf": "acute renal failure",
    "cad": "coronary artery disease",
    "mi": "myocardial infarction",
    "ami": "acute myocardial infarction",
    "stemi": "st elevation myocardial infarction",
    "nstemi": "non-st elevation myocardial infarction",
    "afib": "atrial fibrillation",
    "uti": "urinary tract infection",
    "urti": "upper respiratory tract infection",
    "uri": "upper respiratory infection",
    "lrti": "lower respiratory tract infection",
    "mri": "magnetic resonance imaging",
    "nmr": "magnetic resonance imaging",
    "rmn": "magnetic resonance imaging",
    "ecg": "electrocardiogram",
    "ekg": "electrocardiogram",
    "eeg": "electroencephalogram",
    "emg": "electromyography",
    "cbc": "complete blood count",
    "bmp": "basic metabolic panel",
    "cmp": "comprehensive metabolic panel",
    "lft": "liver function test",
    "lfts": "liver function test",
    "microhematuria": "microscopic hematuria",
    "macrohematuria": "gross hematuria",
    "tft": "thyroid function test",
    "abg": "arterial blood gas",
    "cxr": "chest x-ray",
    "xray": "x-ray",
    "rx": "x-ray",
    "ct": "computerized tomography",
    "tc": "computerized tomography",
    "tac": "computerized tomography",
    "usg": "ultrasound",
    "echo": "echocardiogram",
    "tte": "transthoracic echocardiogram",
    "tee": "transesophageal echocardiogram",
    "egd": "esophagogastroduodenoscopy",
    "ercp": "endoscopic retrograde cholangiopancreatography",
    "dvt": "deep vein thrombosis",
    "tep": "pulmonary thromboembolism",
    "cva": "cerebrovascular accident",
    "tia": "transient ischemic attack",
    "sah": "subarachnoid hemorrhage",
    "ich": "intracerebral hemorrhage",
    "gerd": "gastroesophageal reflux disease",
    "gord": "gastroesophageal reflux disease",
    "gi": "gastrointestinal",
    "gib": "gastrointestinal bleeding",
    "ibd": "inflammatory bowel disease",
    "ibs": "irritable bowel syndrome",
    "bph": "benign prostatic hyperplasia",
    "osa": "obstructive sleep apnea",
    "oa": "osteoarthritis",
    "ra": "rheumatoid arthritis",
    "sle": "systemic lupus erythematosus",
    "hiv": "human immunodeficiency virus",
    "hcv": "hepatitis c virus",
    "siadh": "syndrome of inappropriate secretion of antidiuretic hormone",
    "hbv": "hepatitis b virus",
    "tb": "tuberculosis",
    "tbc": "tuberculosis",  # the Spanish abbreviation, kept by translations
    "crf": "chronic renal failure",  # Spanish "IRC" as translations write it
    "ipf": "idiopathic pulmonary fibrosis",
    "avm": "arteriovenous malformation",
    "crps": "complex regional pain syndrome",
    "tbi": "traumatic brain injury",
    "mrsa": "methicillin resistant staphylococcus aureus",
    "marsa": "methicillin resistant staphylococcus aureus",  # the Spanish abbreviation, kept by translations
    "mssa": "methicillin susceptible staphylococcus aureus",
    "vre": "vancomycin resistant enterococcus",
    "ards": "acute respiratory distress syndrome",
    "sob": "shortness of breath",
    "loc": "loss of consciousness",
    "ams": "altered mental status",
    "hld": "hyperlipidemia",
    "hlp": "hyperlipidemia",
    "dld": "dyslipidemia",
    "pvd": "peripheral vascular disease",
    "aaa": "abdominal aortic aneurysm",
    "cabg": "coronary artery bypass graft",
    "pci": "percutaneous coronary intervention",
    "ptca": "percutaneous transluminal coronary angioplasty",
    "bpd": "bronchopulmonary dysplasia",
    "nsclc": "non-small cell lung cancer",
    "sclc": "small cell lung cancer",
    "hcc": "hepatocellular carcinoma",
    "rcc": "renal cell carcinoma",
    "bcc": "basal cell carcinoma",
    "scc": "squamous cell carcinoma",
    "dcis": "ductal carcinoma in situ",
    "cll": "chronic lymphocytic leukemia",
    "cml": "chronic myeloid leukemia",
    "aml": "acute myeloid leukemia",
    "nhl": "non-hodgkin lymphoma",
    "ptsd": "post-traumatic stress disorder",
    "adhd": "attention deficit hyperactivity disorder",
    "ocd": "obsessive compulsive disorder",
    "mdd": "major depressive disorder",
    "etoh": "alcohol",
    "ivdu": "intravenous drug use",
    "sirs": "systemic inflammatory response syndrome",
    "dka": "diabetic ketoacidosis",
    "hhs": "hyperosmolar hyperglycemic state",
    "ugib": "upper gastrointestinal bleeding",
    "lgib": "lower gastrointestinal bleeding",
    "nash": "nonalcoholic steatohepatitis",
    "nafld": "nonalcoholic fatty liver disease",
    "pcos": "polycystic ovary syndrome",
    "std": "sexually transmitted disease",
    "sti": "sexually transmitted infection",
    "pid": "pelvic inflammatory disease",
    "hpv": "human papillomavirus",
    "ebv": "epstein barr virus",
    "cmv": "cytomegalovirus",
    "hsv": "herpes simplex virus",
    "vzv": "varicella zoster virus",
    "rsv": "respiratory syncytial virus",
    "csf": "cerebrospinal fluid",
    "bmi": "body mass index",
    "lvef": "left ventricular ejection fraction",
    "lvh": "left ventricular hypertrophy",
    "rbbb": "right bundle branch block",
    "lbbb": "left bundle branch block",
    "svt": "supraventricular tachycardia",
    "vt": "ventricular tachycardia",
    "vf": "ventricular fibrillation",
    "avr": "aortic valve replacement",
    "mvr": "mitral valve replacement",
    "tka": "total knee arthroplasty",
    "tkr": "total knee replacement",
    "tha": "total hip arthroplasty",
    "thr": "total hip replacement",
    "orif": "open reduction internal fixation",
    "lap": "laparoscopic",
    "bka": "below knee amputation",
    "fna": "fine needle aspiration",
    "fnab": "fine needle aspiration biopsy",
    "paf": "paroxysmal atrial fibrillation",
    "npo": "nothing by mouth",
    "prn": "as needed",
    "nkda": "no known drug allergies",
    "hx": "history",
    "fhx": "family history",
    "pmh": "past medical history",
    "psh": "past surgical history",
    "sx": "symptoms",
    "dx": "diagnosis",
    "tx": "treatment",
    "fx": "fracture",
    "fxs": "fracture",
    "bx": "biopsy",
    "abx": "antibiotics",
    "ua": "urinalysis",
    "iv": "intravenous",
    "im": "intramuscular",
    "sc": "subcutaneous",
    "po": "oral",
    "lle": "left lower extremity",
    "rle": "right lower extremity",
    "lue": "left upper extremity",
    "rue": "right upper extremity",
    "llq": "left lower quadrant",
    "rlq": "right lower quadrant",
    "luq": "left upper quadrant",
    "ruq": "right upper quadrant",
    "tah": "total abdominal hysterectomy",
    "bso": "bilateral salpingo oophorectomy",
    "turp": "transurethral resection of prostate",
    "turbt": "transurethral resection of bladder tumor",
    "tur": "transurethral resection",
    "psa": "prostate specific antigen",
    "hba1c": "hemoglobin a1c",
    "a1c": "hemoglobin a1c",
    "inr": "international normalized ratio",
    "gfr": "glomerular filtration rate",
}
# Expanded only when written in capitals in the original (ambiguous in lower case).
_ABBR_UPPER: dict[str, str] = {
    "ms": "multiple sclerosis",
    "ca": "cancer",
    "af": "atrial fibrillation",
    "as": "aortic stenosis",
    "ar": "aortic regurgitation",
    "mr": "mitral regurgitation",
    "ALL": "acute lymphoblastic leukemia",
    "ed": "emergency department",
    "er": "emergency room",
    "icu": "intensive care unit",
    "or": "operating room",
    "ob": "obstetric",
    "hb": "hemoglobin",
    "hgb": "hemoglobin",
    "ha": "headache",
    "cp": "chest pain",
    "ln": "lymph node",
    "ns": "normal saline",
    "bp": "blood pressure",
    "hr": "heart rate",
    "rr": "respiratory rate",
    "us": "ultrasound",
    "doe": "dyspnea on exertion",
    "pe": "pulmonary embolism",
    "cat": "computerized tomography",
    "pad": "peripheral arterial disease",
    "aka": "above knee amputation",
    "gad": "generalized anxiety disorder",
    "pet": "positron emission tomography",
    "aids": "acquired immunodeficiency syndrome",  # "hearing aids", "walking aids"
    "gist": "gastrointestinal stromal tumor",  # "the gist of"
}
#: All abbreviations and their expansions (lower-case key; the ``upper`` ones need capitals).
ABBREVIATIONS: dict[str, str] = {**_ABBR_ANY, **{k.lower(): v for k, v in _ABBR_UPPER.items()}}
_UPPER_ONLY = frozenset(k.lower() for k in _ABBR_UPPER)

# --- spelling and inflection ---------------------------------------------------------------
# British -> American spellings frequent in (translated) clinical text, applied as prefixes
# or infixes of a token.
_SPELLING = [
    (re.compile(r"^haem"), "hem"), (re.compile(r"aem"), "em"), (re.compile(r"^oedem"), "edem"),
    (re.compile(r"^oesoph"), "esoph"), (re.compile(r"^oestr"), "estr"), (re.compile(r"^foet"), "fet"),
    (re.compile(r"^paed"), "ped"), (re.compile(r"paed"), "ped"), (re.compile(r"^gynaec"), "gynec"),
    (re.compile(r"^caec"), "cec"), (re.compile(r"rrhoea"), "rrhea"), (re.compile(r"^tumour"), "tumor"),
    (re.compile(r"^behaviour"), "behavior"), (re.compile(r"^leukaem"), "leukem"), (re.compile(r"^phaeo"), "pheo"),
    (re.compile(r"^ischaem"), "ischem"), (re.compile(r"^anaesth"), "anesth"), (re.compile(r"^coeli"), "celi"),
    (re.compile(r"^dyspnoea"), "dyspnea"), (re.compile(r"^apnoea"), "apnea"), (re.compile(r"^oedema"), "edema"),
    (re.compile(r"^orthopaed"), "orthoped"), (re.compile(r"isation"), "ization"), (re.compile(r"ise$"), "ize"),
    (re.compile(r"^fibre"), "fiber"), (re.compile(r"^centre"), "center"), (re.compile(r"^litre"), "liter"),
    (re.compile(r"^sulph"), "sulf"), (re.compile(r"^haemat"), "hemat"), (re.compile(r"aesth"), "esth"),
    # Spanish spellings that translations keep: leucopenia, intracraneal, ortopnea, disfunction
    (re.compile(r"^leuc"), "leuk"), (re.compile(r"craneal"), "cranial"), (re.compile(r"^ortop"), "orthop"),
    (re.compile(r"^disfunc"), "dysfunc"),
]
_SPELLING_TRIGGER = re.compile(r"ae|oe|our|is|fibre|centre|litre|sulph|paed|leuc|crane|ortop")

# Irregular plurals and the adjective -> noun pairs folded on both sides ("where safe").
_IRREGULAR: dict[str, str] = {
    "metastases": "metastasis", "diagnoses": "diagnosis", "prognoses": "prognosis",
    "appendices": "appendix", "varices": "varix", "cervices": "cervix", "apices": "apex",
    "cortices": "cortex", "indices": "index", "matrices": "matrix", "vertices": "vertex",
    "bronchi": "bronchus", "calculi": "calculus", "thrombi": "thrombus", "emboli": "embolus",
    "nuclei": "nucleus", "fungi": "fungus", "bacilli": "bacillus", "foci": "focus", "nevi": "nevus",
    "naevi": "nevus", "naevus": "nevus", "alveoli": "alveolus", "glomeruli": "glomerulus", "menisci": "meniscus",
    "bacteria": "bacterium", "ova": "ovum", "data": "data", "teeth": "tooth", "feet": "foot",
    "men": "man", "women": "woman", "children": "child", "lymphnodes": "lymph node",
    "vertebrae": "vertebra", "bursae": "bursa", "fistulae": "fistula", "ulnae": "ulna", "pleurae": "pleura",
    "larvae": "larva", "sequelae": "sequela", "conjunctivae": "conjunctiva", "fasciae": "fascia",
    "species": "species", "series": "series", "caries": "caries", "herpes": "herpes", "scabies": "scabies",
    "rabies": "rabies", "diabetes": "diabetes", "mumps": "mumps", "measles": "measles", "rickets": "rickets",
    "lens": "lens", "pancreas": "pancreas", "pubis": "pubis", "iris": "iris", "pelvis": "pelvis",
    "doses": "dose", "noses": "nose", "hoses": "hose", "bases": "base", "cases": "case", "phases": "phase",
    "uterus": "uterus", "virus": "virus", "viruses": "virus", "sinuses": "sinus", "abscesses": "abscess",
    "ulcers": "ulcer", "status": "status", "bus": "bus", "gas": "gas", "gases": "gas", "plus": "plus",
    "thus": "thus", "bypass": "bypass", "tetanus": "tetanus", "clitoris": "clitoris", "testes": "testis",
    "testicles": "testicle", "ganglia": "ganglion", "stigmata": "stigma", "carcinomata": "carcinoma",
    "adenomata": "adenoma", "sarcomata": "sarcoma", "crises": "crisis", "pelves": "pelvis", "femora": "femur",
    "bullae": "bulla", "papillae": "papilla", "ampullae": "ampulla", "maculae": "macula", "fimbriae": "fimbria",
    # adjective -> noun, the pairs the alphabetic index treats alike ("Diabetes, diabetic")
    "diabetic": "diabetes", "anemic": "anemia", "anaemic": "anemia", "ischemic": "ischemia",
    "hypoxic": "hypoxia", "hypoxemic": "hypoxemia", "dyspneic": "dyspnea", "asthmatic": "asthma",
    "hypertensive": "hypertension", "hypotensive": "hypotension", "cirrhotic": "cirrhosis",
    "necrotic": "necrosis", "obese": "obesity", "febrile": "fever", "hemorrhagic": "hemorrhage",
    "osteoporotic": "osteoporosis", "arthritic": "arthritis", "edematous": "edema", "epileptic": "epilepsy",
    "psychotic": "psychosis", "sclerotic": "sclerosis", "stenotic": "stenosis", "fibrotic": "fibrosis",
    "thrombotic": "thrombosis", "hypoglycemic": "hypoglycemia", "hyperglycemic": "hyperglycemia",
    "uremic": "uremia", "septicemic": "septicemia", "leukemic": "leukemia", "malnourished": "malnutrition",
    "fractured": "fracture", "dislocated": "dislocation", "pneumonic": "pneumonia", "tuberculous": "tuberculosis",
    "nauseous": "nausea", "nauseated": "nausea", "feverish": "fever", "vomit": "vomiting", "jaundiced": "jaundice",
    "cachectic": "cachexia", "dehydrated": "dehydration", "infarcted": "infarction", "ulcerated": "ulcer",
    "erythematous": "erythema", "somnolent": "somnolence", "diarrheal": "diarrhea", "diarrhoeal": "diarrhea",
    "anuric": "anuria", "oliguric": "oliguria", "cyanotic": "cyanosis", "tachycardic": "tachycardia",
    "bradycardic": "bradycardia", "tachypneic": "tachypnea", "tachypnoeic": "tachypnea", "painful": "pain",
    "swollen": "swelling", "inflamed": "inflammation", "allergic": "allergy", "neoplastic": "neoplasm",
    "tumoral": "tumor", "metastatic": "metastasis", "hypothyroid": "hypothyroidism", "icteric": "jaundice",
    "icterus": "jaundice", "lithiasic": "lithiasis", "atrophic": "atrophy", "dysplastic": "dysplasia",
    "hyperplastic": "hyperplasia", "hypertrophic": "hypertrophy", "fibrous": "fibrosis", "scarring": "scar",
    # imaging modality spellings ("Ultrasonography, kidney" in ICD-10-PCS; "renal ultrasound" in notes)
    "ultrasonography": "ultrasound", "ultrasonographic": "ultrasound", "sonography": "ultrasound",
    "sonographic": "ultrasound", "echography": "ultrasound", "ecography": "ultrasound",
    "echographic": "ultrasound", "tomographic": "tomography", "radiographic": "radiography",
    "radiograph": "radiography", "scintigraphic": "scintigraphy", "angiographic": "angiography",
    # procedure participles -> the root-operation noun ("was intubated", "the kidney was resected")
    "intubated": "intubation", "extubated": "extubation", "biopsied": "biopsy", "transfused": "transfusion",
    "resected": "resection", "excised": "excision", "amputated": "amputation", "drained": "drainage",
    "catheterized": "catheterization", "catheterised": "catheterization", "ventilated": "ventilation",
    "dialyzed": "dialysis", "transplanted": "transplantation", "irrigated": "irrigation",
    "cauterized": "cauterization", "embolized": "embolization", "ligated": "ligation", "stented": "stent",
    # anatomical adjective -> organ noun: the index words a site both ways ("Failure, renal" /
    # "Failure, kidney"; "Steatosis, liver" for the note's "hepatic steatosis")
    "renal": "kidney", "nephric": "kidney", "hepatic": "liver", "pulmonary": "lung", "cardiac": "heart",
    "gastric": "stomach", "cerebral": "brain", "encephalic": "brain", "ocular": "eye", "cutaneous": "skin",
    "osseous": "bone", "splenic": "spleen", "pancreatic": "pancreas", "colonic": "colon", "rectal": "rectum",
    "uterine": "uterus", "ovarian": "ovary", "testicular": "testis", "prostatic": "prostate", "vesical": "bladder",
    "esophageal": "esophagus", "oesophageal": "esophagus", "duodenal": "duodenum",
    "gingival": "gum", "lingual": "tongue", "nasal": "nose", "dental": "tooth", "mammary": "breast",
    "vertebral": "vertebra", "costal": "rib", "femoral": "femur", "humeral": "humerus", "tibial": "tibia",
    "fibular": "fibula", "radial": "radius", "ulnar": "ulna", "clavicular": "clavicle", "scapular": "scapula",
    "pelvic": "pelvis", "cranial": "skull", "thoracic": "thorax", "abdominal": "abdomen", "intestinal": "intestine",
    "laryngeal": "larynx", "pharyngeal": "pharynx", "tracheal": "trachea", "bronchial": "bronchus",
    "ureteral": "ureter", "ureteric": "ureter", "urethral": "urethra", "vaginal": "vagina", "vulvar": "vulva",
    "thyroidal": "thyroid", "retinal": "retina", "corneal": "cornea",
    "venous": "vein", "arterial": "artery", "muscular": "muscle", "articular": "joint",
    "peritoneal": "peritoneum", "pleural": "pleura", "pericardial": "pericardium", "meningeal": "meninges",
    "cecal": "cecum", "caecal": "cecum", "ileal": "ileum", "jejunal": "jejunum", "mediastinal": "mediastinum",
    "axillary": "axilla", "sacral": "sacrum", "calcaneal": "calcaneus", "mandibular": "mandible",
    "maxillary": "maxilla", "palatal": "palate", "labial": "lip", "orbital": "orbit", "sternal": "sternum",
    "palpebral": "eyelid", "facial": "face", "macular": "macula",
    # Spanish "hemiescroto": one side of the scrotum (N50.82 Scrotal pain)
    "scrotal": "scrotum", "hemiscrotum": "scrotum", "hemiscrotal": "scrotum", "urachal": "urachus",
    # Spanish "hidrocefalia"; Latin "ulcus" as Spanish notes keep it ("ulcus peptico")
    "hydrocephalia": "hydrocephalus", "ulcus": "ulcer", "bilirrubin": "bilirubin",
    # Spanish "orquiepididimitis" (the index's Epididymo-orchitis, N45.3) and "unión pieloureteral"
    # (the index's ureteropelvic junction, N13.5, Q62.11; it also says "pelviureteric")
    "orchiepididymitis": "epididymo orchitis", "pyeloureteral": "ureteropelvic", "pelviureteric": "ureteropelvic",
    # Spanish "enolismo" / "etílico" as translations leave them: alcohol(ism)
    "enolism": "alcoholism", "enolic": "alcoholic", "ethylic": "alcoholic",
    # the PCS index's "Gastrectomy, Partial" is the note's "subtotal gastrectomy"
    "subtotal": "partial",
    # the index's "Deficit - see also Deficiency": Spanish "deficit de vitamina D / factor XI" is
    # the vitamin D / factor XI deficiency (E55.9, D68.1), and "Deficit, neurologic" stays itself
    "deficit": "deficiency",
    # Spanish "sigma": the sigmoid colon ("cancer de sigma" C18.7); Spanish "diafisis": a long
    # bone's shaft (the index's "Fracture, femur, shaft"); "hemospermia" is the index's Hematospermia
    "sigma": "sigmoid", "diaphysis": "shaft", "diaphyseal": "shaft", "diaphysary": "shaft",
    "hemospermia": "hematospermia",
    # Spanish "teleangiectasia" (the index's Telangiectasia, I78.1) and adjectives whose condition is
    # the index's noun: "petechial spots" (Petechia R23.3), "apathetic" (Apathy R45.3)
    "teleangiectasia": "telangiectasia", "teleangiectatic": "telangiectasia", "telangiectatic": "telangiectasia",
    "telangectasia": "telangiectasia",
    "petechial": "petechia", "apathetic": "apathy",
    # "distended abdomen" / "the bladder was distended" (Distension, abdomen R14.0; bladder N32.89),
    # "melenic stools" (Melena K92.1)
    "distended": "distension", "melenic": "melena",
    }
#: Two written words that the next one reads differently: ``{next: {previous: (reading, ending,
#: joined)}}``; ``ending``, where given, is how the previous word must end as written. ``joined``:
#: both words become one token ("extracorporeal shock wave lithotripsy" has no shock, R57.9);
#: otherwise the previous word alone is read anew ("hypotensive medication" lowers the pressure: it
#: is an antihypertensive, not hypotension, I95.9).
_DRUG_WORDS = ("medication", "medicine", "drug", "treatment", "therapy", "agent", "drop")
_READ_WITH_PREVIOUS: dict[str, dict[str, tuple[str, str | None, bool]]] = {
    "wave": {"shock": ("shockwave", None, True)},
    # "AV" is atrioventricular before "block" ("complete AV block", I44.2); elsewhere it is often
    # the Spanish "agudeza visual" (visual acuity)
    "block": {"av": ("atrioventricular", None, False)},
    **{w: {"hypotension": ("antihypertensive", "ive", False)} for w in _DRUG_WORDS},
}

_PROTECTED_ENDINGS = ("ss", "us", "is", "as", "os")
# words in -as that are singular (every other one of over four letters is a plural of a word in -a)
_AS_SINGULARS = frozenset({"pancreas", "atlas", "alias", "canvas", "whereas", "texas", "thomas", "lucas",
                           "nicolas", "dallas", "christmas", "vegas", "midas", "judas"})

_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8"}
_ROMAN_CONTEXT = {"type", "stage", "grade", "class", "phase", "degree", "nerve", "factor", "cranial"}
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}
# Prefixes joined to the next word when hyphenated ("pre-eclampsia" -> "preeclampsia").
_JOIN_PREFIXES = frozenset(
    "pre post non anti sub intra inter peri hyper hypo re co para extra trans micro macro semi "
    "multi bi tri uni poly pan endo epi retro supra infra mid neo pseudo auto".split()
)

_EXPANSION_CACHE: dict[str, tuple[str, ...]] = {}


def _expansion(low: str) -> tuple[str, ...]:
    """The normalised tokens of an abbreviation's expansion (normalised like any text)."""
    got = _EXPANSION_CACHE.get(low)
    if got is None:
        words: list[str] = []
        for m in _TOKEN_RE.finditer(ABBREVIATIONS[low]):
            for piece, _, _ in _split_hyphens(m.group(), m.start()):
                words.append(stem(piece))
        got = _EXPANSION_CACHE[low] = tuple(words)
    return got


_TOKEN_RE = re.compile(r"[^\W_]+(?:[-\u2010\u2011][^\W_]+)*", re.UNICODE)


def stem(token: str) -> str:
    """Fold a lower-case token: British spelling, irregular plurals, regular plurals.

    A deliberately light stemmer: it only removes inflection that keeps the word
    recognisable (``fractures``→``fracture``, ``arteries``→``artery``,
    ``abscesses``→``abscess``, ``stenoses``→``stenosis``) and folds a curated list of
    adjective/noun pairs (``diabetic``→``diabetes``). It is applied identically to
    index phrases and notes, so consistency matters more than linguistics.

    Args:
        token: one lower-case token without punctuation.

    Returns:
        The folded token, a fixed point: folding it again changes nothing, so a word and its
        inflections meet ("exercises" -> "exercise" -> "exercize", as "exercise" itself).
    """
    out = _fold(token)
    for _ in range(4):  # one fold can expose another; real words settle in one or two more
        again = _fold(out)
        if again == out:
            break
        out = again
    return out


def _fold(token: str) -> str:
    """One pass of :func:`stem`'s folds."""
    if len(token) <= 3 or token.isdigit():
        return token
    if _SPELLING_TRIGGER.search(token):
        for pat, rep in _SPELLING:
            token = pat.sub(rep, token)
    irr = _IRREGULAR.get(token)
    if irr is not None:
        return irr
    if token.endswith("ological"):
        return token[:-2]  # the index words it both ways: "Deficit, neurologic"; "neurological deficit"
    if token.endswith(("sarcoma", "sarcomas")) and len(token) > 10 and " " not in token:
        # a sarcoma named by its tissue ("leiomyosarcoma of the colon") is also a sarcoma of its
        # site, as the neoplasm table's "sarcoma of <site>" reads it (C18.9)
        return token[: token.rindex("sarcoma")] + " sarcoma"
    if token.endswith("as") and len(token) > 4 and token not in _AS_SINGULARS:
        return token[:-1]  # lipomas, hernias, fistulas, paresthesias: plurals of words in -a
    if not token.endswith("s") or token.endswith(_PROTECTED_ENDINGS):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("oses") and len(token) > 6:
        return token[:-4] + "osis"
    if token.endswith(("yses", "theses")) and len(token) > 6:
        return token[:-2] + "is"  # analyses, dialyses, epiphyses, prostheses: Greek plurals of -sis
    if token.endswith(("sses", "xes", "ches", "shes", "zes")):
        base = token[:-2]
        return _IRREGULAR.get(base, base)
    base = token[:-1]
    return _IRREGULAR.get(base, base)


class Token(NamedTuple):
    """A normalised token and the original character range ``[start, end)`` it came from."""

    norm: str
    start: int
    end: int


def _split_hyphens(word: str, start: int) -> list[tuple[str, int, int]]:
    """Split a hyphenated word into pieces, joining known prefixes to what follows."""
    pieces: list[tuple[str, int, int]] = []
    pos = start
    for part in re.split(r"[-\u2010\u2011]", word):
        s, e = pos, pos + len(part)
        pos = e + 1
        if pieces and pieces[-1][0].lower() in _JOIN_PREFIXES:
            prev = pieces.pop()
            pieces.append((prev[0] + part, prev[1], e))
        else:
            pieces.append((part, s, e))
    return pieces


def _word_tokens(word: str, roman_ctx: bool) -> tuple[tuple[tuple[str, int, int], ...], str]:
    """Normalise one word (hyphenated pieces included).

    Args:
        word: the word as written.
        roman_ctx: whether the previous normalised token makes a roman numeral a number
            (``type``, ``stage``, ``grade``...).

    Returns:
        ``((norm, start, end), ...)`` with offsets relative to the word, and the last
        normalised token (the context for the next word).
    """
    out: list[tuple[str, int, int]] = []
    prev_norm = "type" if roman_ctx else ""
    pieces = [(word, 0, len(word))] if "-" not in word and "\u2010" not in word and "\u2011" not in word \
        else _split_hyphens(word, 0)
    for piece, s, e in pieces:
        low = piece.lower()
        key = low
        is_abbr = low in _ABBR_ANY and not (prev_norm in _ROMAN_CONTEXT and low in _ROMAN)
        if not is_abbr and low in _UPPER_ONLY and piece.isupper() and len(piece) > 1:
            is_abbr = True
        if not is_abbr and len(low) > 2 and low[-1] == "s":  # plural abbreviation: "UTIs", "CTs"
            key = low[:-1]
            is_abbr = key in _ABBR_ANY or (key in _UPPER_ONLY and piece[:-1].isupper() and len(key) > 1)
        if is_abbr:
            exp = _expansion(key)
            out.extend((w, s, e) for w in exp)
            prev_norm = exp[-1]
            continue
        if prev_norm in _ROMAN_CONTEXT and low in _ROMAN:
            norm = _ROMAN[low]
        elif prev_norm in _ROMAN_CONTEXT and low in _NUMBER_WORDS:
            norm = _NUMBER_WORDS[low]
        else:
            norm = stem(low)
            if norm in _ABBR_ANY and norm != low:  # a stem that is an abbreviation: keep idempotent
                exp = _expansion(norm)
                out.extend((w, s, e) for w in exp)
                prev_norm = exp[-1]
                continue
        prev_norm = norm
        out.extend((w, s, e) for w in norm.split(" "))
    return tuple(out), prev_norm


_WORD_CACHE: dict[tuple[str, bool], tuple[tuple[tuple[str, int, int], ...], str]] = {}


_MARKER_NUMBER = re.compile(r"[ \t]?-?[ \t]?\d")


def tokenize(text: str, stopwords: Iterable[str] = ()) -> list[Token]:
    """Normalise ``text`` into tokens with their original offsets.

    Args:
        text: any text (a note, a sentence, an index phrase).
        stopwords: normalised tokens to drop (e.g. ``{"the", "of"}`` for matching).

    Returns:
        The normalised tokens in order; an abbreviation expanding to several words gives
        several tokens sharing the original range.
    """
    stop = stopwords if isinstance(stopwords, (set, frozenset)) else frozenset(stopwords)
    new_token = tuple.__new__
    out: list[Token] = []
    roman_ctx = False
    cache = _WORD_CACHE
    for m in _TOKEN_RE.finditer(text):
        word = m.group()
        start = m.start()
        if word in ("s", "S") and start > 0 and text[start - 1] in "'\u2019":
            continue  # possessive: "Aarskog's" -> "aarskog"
        if word == "CA" and _MARKER_NUMBER.match(text, m.end()):
            # the tumor markers CA 125, CA 15-3, CA 19-9 are no cancer
            got = ((("ca", 0, 2),), "ca")
        elif word[:3] == "CA-" and word[3:4].isdigit():
            got = _word_tokens("ca" + word[2:], roman_ctx)  # CA-125: lower case is never expanded
        else:
            got = cache.get((word, roman_ctx))
            if got is None:
                if len(cache) > 1_000_000:
                    cache.clear()
                got = cache[(word, roman_ctx)] = _word_tokens(word, roman_ctx)
        pieces, last = got
        for norm, s, e in pieces:
            if s == 0 and out and out[-1].norm == "non" and text[out[-1].end : start].isspace():
                # "non Hodgkin" written apart: join like the hyphenated "non-Hodgkin"
                prev = out.pop()
                norm = stem("non" + norm)
                out.append(Token(norm, prev.start, start + e))
                continue
            if s == 0 and out and norm in _READ_WITH_PREVIOUS:
                prev = out[-1]
                reading, ending, joined = _READ_WITH_PREVIOUS[norm].get(prev.norm, ("", None, False))
                if reading and text[prev.end : start].isspace() and (
                        ending is None or text[prev.start : prev.end].lower().endswith(ending)):
                    if joined:
                        out[-1] = Token(reading, prev.start, start + e)
                        continue
                    out[-1] = Token(reading, prev.start, prev.end)
            if norm not in stop:
                out.append(new_token(Token, (norm, start + s, start + e)))  # Token(...) without its Python __new__
        roman_ctx = last in _ROMAN_CONTEXT
    return out


def _join(tokens: list[Token], text_len: int) -> tuple[str, list[int]]:
    parts: list[str] = []
    omap: list[int] = []
    prev_end = 0
    for i, t in enumerate(tokens):
        if i:
            parts.append(" ")
            omap.append(prev_end)
        parts.append(t.norm)
        last = max(t.start, t.end - 1)
        omap.extend(min(t.start + k, last) for k in range(len(t.norm)))
        prev_end = t.end
    omap.append(prev_end if tokens else 0)
    return "".join(parts), omap


def normalize(text: str) -> tuple[str, list[int]]:
    """Normalise ``text`` for matching, with a map back to original offsets.

    Lower-cases, folds punctuation and runs of whitespace to single spaces, splits
    hyphenated words (joining prefixes such as ``pre-``/``non-``), expands clinical
    abbreviations (``HTN``→``hypertension``, ``T2DM``→``diabetes mellitus type 2``;
    ambiguous ones such as ``MS``, ``CA``, ``AF`` only when written in capitals), turns
    roman numerals after ``type``/``stage``/``grade`` into digits, folds British spellings
    and plurals (see :func:`stem`).

    Args:
        text: the original text.

    Returns:
        ``(norm_text, offset_map)``; see the module docstring for the map's contract.
    """
    return _join(tokenize(text), len(text))


def normalize_phrase(phrase: str, stopwords: Iterable[str] = ()) -> str:
    """Normalise a dictionary phrase the same way as note text (tokens joined by spaces)."""
    return " ".join(t.norm for t in tokenize(phrase, stopwords))
