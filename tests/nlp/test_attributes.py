"""Attributes around a mention: laterality, acuity, episode, stage, type."""

from __future__ import annotations

import pytest

from opencac.nlp import analyze
from opencac.nlp.attributes import extract_attributes


def _attrs(text: str, target: str, occurrence: int = 0) -> dict[str, str]:
    doc = analyze(text)
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(target, start + 1)
    return extract_attributes(doc, start, start + len(target))


@pytest.mark.parametrize(
    ("text", "target", "key", "value"),
    [
        ("Fracture of the left femur.", "Fracture", "laterality", "left"),
        ("Right inguinal hernia.", "inguinal hernia", "laterality", "right"),
        ("Bilateral pleural effusion.", "pleural effusion", "laterality", "bilateral"),
        ("Pneumonia in both lungs.", "Pneumonia", "laterality", "bilateral"),
        ("Left knee pain, right hip fracture.", "hip fracture", "laterality", "right"),
        ("Left knee pain, right hip fracture.", "knee pain", "laterality", "left"),
        ("Acute on chronic systolic heart failure.", "heart failure", "acuity", "acute_on_chronic"),
        ("Acute pancreatitis.", "pancreatitis", "acuity", "acute"),
        ("Chronic obstructive pulmonary disease.", "obstructive pulmonary disease", "acuity", "chronic"),
        ("Subacute thyroiditis.", "thyroiditis", "acuity", "subacute"),
        ("Acute on chronic systolic heart failure.", "heart failure", "type", "systolic"),
        ("Heart failure with preserved ejection fraction.", "Heart failure", "type", "diastolic"),
        ("Combined systolic and diastolic heart failure.", "heart failure", "type", "combined"),
        ("Diabetes mellitus type 2 on metformin.", "Diabetes mellitus", "type", "2"),
        ("Type I diabetes since childhood.", "diabetes", "type", "1"),
        ("Known T2DM.", "T2DM", "type", "2"),
        ("Gestational diabetes.", "diabetes", "type", "gestational"),
        ("CKD stage 3b.", "CKD", "stage", "3b"),
        ("Chronic kidney disease stage IV.", "Chronic kidney disease", "stage", "4"),
        ("End-stage renal disease on hemodialysis.", "renal disease", "stage", "esrd"),
        ("Stage IIIA lung adenocarcinoma.", "lung adenocarcinoma", "stage", "3a"),
        ("Pressure ulcer of the sacrum, stage 2.", "Pressure ulcer", "stage", "2"),
        ("Unstageable pressure ulcer of the heel.", "pressure ulcer", "stage", "unstageable"),
        ("Admitted to the emergency department with a fracture of the radius.", "fracture", "episode", "initial"),
        ("Follow-up visit for a healing fracture of the radius.", "fracture", "episode", "subsequent"),
        ("Malunion of the radius fracture, cast removal.", "fracture", "episode", "subsequent"),
        ("Sequela of an old burn of the hand.", "burn", "episode", "sequela"),
    ],
)
def test_attribute_values(text: str, target: str, key: str, value: str) -> None:
    assert _attrs(text, target).get(key) == value


def test_attributes_absent_when_not_documented() -> None:
    assert _attrs("Pneumonia.", "Pneumonia") == {}
    got = _attrs("Hypertension and type 2 diabetes.", "Hypertension")
    assert "type" not in got  # the type belongs to the diabetes mention
    assert "episode" not in _attrs("Fever and cough.", "cough")  # not an injury


def test_attributes_stay_in_the_clause() -> None:
    got = _attrs("Previous MI, CKD stage 3.", "MI")
    assert "stage" not in got
    assert _attrs("Previous MI, CKD stage 3.", "CKD")["stage"] == "3"


def test_attributes_stay_in_the_sentence() -> None:
    text = "Left-sided weakness.\nPneumonia."
    assert "laterality" not in _attrs(text, "Pneumonia")


def test_injury_defaults_to_initial_episode() -> None:
    assert _attrs("Fracture of the clavicle.", "Fracture")["episode"] == "initial"
