#!/usr/bin/env python3
"""test/extra/fhir_same_as_csv.py: the same small population written twice, as a Synthea 3.x
CSV export and as FHIR R4 Bundles (as Synthea writes each), so that both imports can be
compared segment for segment.  Usage: fhir_same_as_csv.py CSV_DIR FHIR_DIR"""
import csv
import json
import os
import sys
from datetime import datetime, timedelta, timezone

csv_dir, fhir_dir = sys.argv[1], sys.argv[2]
os.makedirs(csv_dir, exist_ok=True)
os.makedirs(fhir_dir, exist_ok=True)
EST = timezone(timedelta(hours=-5))


def inst(u):
    """an instant given in UTC ('2024-02-10T14:00:00Z') as FHIR writes it, with a local offset"""
    d = datetime.strptime(u, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return d.astimezone(EST).isoformat()


# id, gender, birth, death (plain date or ''), encounters [(id, class, snomed, start_utc)],
# conditions [(code, onset date)], observations [(code, value, unit, time_utc)] (BP as a pair),
# procedures [(code, time_utc)], immunizations [(cvx, time_utc)]
P = [
    ("a0000000-0000-4000-8000-000000000001", "F", "1965-03-02", "",
     [("e1", "wellness", "185349003", "2024-02-10T14:00:00Z")], [],
     [], [("71651007", "2022-10-01T04:30:00Z")], []),
    ("a0000000-0000-4000-8000-000000000002", "F", "1970-05-05", "",
     [("e2", "wellness", "185349003", "2024-03-01T15:00:00Z")], [],
     [], [("71651007", "2022-10-01T03:30:00Z"), ("90226004", "2022-01-01T05:00:00Z")], []),
    ("a0000000-0000-4000-8000-000000000003", "M", "1950-01-01", "",
     [("e3", "wellness", "185349003", "2024-04-01T13:00:00Z")],
     [("44054006", "2015-06-01"), ("59621000", "2010-01-01")],
     [("4548-4", "9.5", "%", "2024-06-01T12:00:00Z"), ("BP", "150/95", "mm[Hg]", "2024-06-01T12:00:00Z")],
     [], [("140", "2024-09-15T14:00:00Z")]),
    ("a0000000-0000-4000-8000-000000000004", "M", "1955-07-07", "2025-02-01",
     [("e4", "wellness", "185349003", "2024-04-02T13:00:00Z")], [("59621000", "2010-01-01")],
     [("BP", "120/80", "mm[Hg]", "2024-04-02T13:00:00Z")], [], []),
    ("a0000000-0000-4000-8000-000000000005", "M", "1980-01-01", "",
     [("e5", "ambulatory", "185345009", "2024-03-05T16:00:00Z")],
     [("59621000", "2020-01-01"), ("44054006", "2024-06-10")],
     [("BP", "120/80", "mm[Hg]", "2024-05-01T13:00:00Z")], [], []),
    ("a0000000-0000-4000-8000-000000000006", "F", "2022-05-10", "",
     [("e6", "wellness", "410620009", "2024-05-10T14:00:00Z")], [], [], [],
     [("20", "2022-07-10T14:00:00Z"), ("140", "2023-01-15T15:00:00Z")]),
    ("a0000000-0000-4000-8000-000000000007", "M", "1960-01-01", "",
     [("e7", "ambulatory", "185345009", "2020-01-15T16:00:00Z")], [], [], [], []),
]

LOINC = {"4548-4": "Hemoglobin A1c/Hemoglobin.total in Blood", "8480-6": "Systolic Blood Pressure",
         "8462-4": "Diastolic Blood Pressure", "55284-4": "Blood Pressure"}


def w(name, header, rows):
    with open(os.path.join(csv_dir, name), "w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(header.split(","))
        out.writerows(rows)


pat, enc, cond, obs, proc, imm = [], [], [], [], [], []
for pid, g, birth, death, encs, conds, obss, procs, imms in P:
    pat.append([pid, birth, death, "", "", "", "", "First" + pid[-1], "Last", "", "", "", "white", "nonhispanic", g,
                "Boston", "1 Main St", "Boston", "Massachusetts", "Suffolk", "02110", "", "", "0", "0"])
    eid = pid[:-2] + encs[0][0][1:].rjust(2, "0")
    e0 = pid[:8] + "-e" + encs[0][0]
    for e, cls, code, start in encs:
        enc.append([pid[:8] + "-e" + e, start, start, pid, "", "", "", cls, code, "Encounter", "0", "0", "0", "", ""])
    for code, onset in conds:
        cond.append([onset, "", pid, e0, code, "Condition"])
    for code, val, unit, t in obss:
        if code == "BP":
            s_, d_ = val.split("/")
            obs.append([t, pid, e0, "vital-signs", "8480-6", LOINC["8480-6"], s_, unit, "numeric"])
            obs.append([t, pid, e0, "vital-signs", "8462-4", LOINC["8462-4"], d_, unit, "numeric"])
        else:
            obs.append([t, pid, e0, "laboratory", code, LOINC[code], val, unit, "numeric"])
    for code, t in procs:
        proc.append([t, t, pid, e0, code, "Procedure", "0", "", ""])
    for code, t in imms:
        imm.append([t, pid, e0, code, "Vaccine", "0"])

w("patients.csv", "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE", pat)
w("encounters.csv", "Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,BASE_ENCOUNTER_COST,TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION", enc)
w("conditions.csv", "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION", cond)
w("observations.csv", "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE", obs)
w("procedures.csv", "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,REASONCODE,REASONDESCRIPTION", proc)
w("immunizations.csv", "DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST", imm)

n = 0
for pid, g, birth, death, encs, conds, obss, procs, imms in P:
    entries = []

    def add(r):
        global n
        n += 1
        if "id" not in r:
            r["id"] = "%s-%04d" % (pid[:8], n)
        entries.append({"fullUrl": "urn:uuid:" + r["id"], "resource": r,
                        "request": {"method": "POST", "url": r["resourceType"]}})
        return "urn:uuid:" + r["id"]
    pref = add(dict({"resourceType": "Patient", "id": pid, "gender": "female" if g == "F" else "male", "birthDate": birth,
                     "name": [{"use": "official", "family": "Last", "given": ["First" + pid[-1]]}],
                     "address": [{"line": ["1 Main St"], "city": "Boston", "state": "Massachusetts", "postalCode": "02110",
                                  "country": "US"}]},
                    **({"deceasedDateTime": death} if death else {})))
    e0 = None
    for e, cls, code, start in encs:
        ref = add({"resourceType": "Encounter", "id": pid[:8] + "-e" + e, "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "type": [{"coding": [{"system": "http://snomed.info/sct", "code": code}], "text": "Encounter"}],
                   "subject": {"reference": pref}, "period": {"start": inst(start), "end": inst(start)}})
        e0 = e0 or ref
    for code, onset in conds:
        add({"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "active"}]},
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
             "subject": {"reference": pref}, "encounter": {"reference": e0}, "onsetDateTime": onset})
    for code, val, unit, t in obss:
        o = {"resourceType": "Observation", "status": "final", "subject": {"reference": pref},
             "encounter": {"reference": e0}, "effectiveDateTime": inst(t)}
        if code == "BP":
            s_, d_ = val.split("/")
            o["code"] = {"coding": [{"system": "http://loinc.org", "code": "55284-4"}]}
            o["component"] = [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": float(s_), "unit": unit}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": float(d_), "unit": unit}}]
        else:
            o["code"] = {"coding": [{"system": "http://loinc.org", "code": code}]}
            o["valueQuantity"] = {"value": float(val), "unit": unit}
        add(o)
    for code, t in procs:
        add({"resourceType": "Procedure", "status": "completed", "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
             "subject": {"reference": pref}, "encounter": {"reference": e0}, "performedPeriod": {"start": inst(t), "end": inst(t)}})
    for code, t in imms:
        add({"resourceType": "Immunization", "status": "completed",
             "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": code}]},
             "patient": {"reference": pref}, "encounter": {"reference": e0}, "occurrenceDateTime": inst(t)})
    with open(os.path.join(fhir_dir, pid + ".json"), "w") as fh:
        json.dump({"resourceType": "Bundle", "type": "transaction", "entry": entries}, fh)
