#!/usr/bin/env python3
"""test/extra/fhir_expected.py: an independent reading of FHIR files, compared with the tables.

Reads the FHIR files itself (json module, not through the importer), applies the mapping
documented in docs/fhir-import.md, reads what outreach.import_fhir stored (psql, keyed by the
resource each row came from: outreach.fhir_source) and compares every mapped field of every
resource.  Prints one "ok - ..." or "not ok - ..." line per check.

Usage: fhir_expected.py PSQL DIR [DIR...]   (PGHOST etc. in the environment)
"""
import json
import os
import re
import subprocess
import sys
from datetime import datetime, date, time, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

MAPPED = {"Patient", "Practitioner", "Organization", "Encounter", "Condition", "Observation", "Procedure",
          "Immunization", "MedicationRequest", "MedicationStatement", "AllergyIntolerance"}
SYSTEMS = {"http://snomed.info/sct": "SNOMED", "http://loinc.org": "LOINC", "http://hl7.org/fhir/sid/cvx": "CVX",
           "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm", "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
           "http://hl7.org/fhir/sid/icd-10": "ICD-10", "http://hl7.org/fhir/sid/ndc": "NDC",
           "http://www.ama-assn.org/go/cpt": "CPT", "http://unitsofmeasure.org": "UCUM",
           "http://synthetichealth.github.io/synthea": "Synthea",
           "http://terminology.hl7.org/CodeSystem/v3-ActCode": "ActCode"}
EASTERN = "CT DE DC FL GA IN ME MD MA MI NH NJ NY NC OH PA RI SC VT VA WV KY".split()
CENTRAL = "AL AR IL IA KS LA MN MS MO NE ND OK SD TN TX WI".split()
MOUNTAIN = "CO ID MT NM UT WY".split()
PACIFIC = "CA NV OR WA".split()
STATE_NAMES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY",
    "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND",
    "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
    "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Puerto Rico": "PR"}


def state_tz(state):
    if state is None:
        return None
    ab = STATE_NAMES.get(state, state.upper() if len(state) == 2 else None)
    for zone, states in (("America/New_York", EASTERN), ("America/Chicago", CENTRAL), ("America/Denver", MOUNTAIN),
                         ("America/Los_Angeles", PACIFIC)):
        if ab in states:
            return zone
    return {"AZ": "America/Phoenix", "AK": "America/Anchorage", "HI": "Pacific/Honolulu",
            "PR": "America/Puerto_Rico"}.get(ab)


def instant(v, tz):
    """FHIR date/dateTime -> UTC text as the test's SQL prints it, or None."""
    if v is None:
        return None
    m = re.match(r"^(\d{4})(?:-(\d\d))?(?:-(\d\d))?$", v)
    if m:
        d = datetime(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1), tzinfo=ZoneInfo(tz or "UTC"))
    else:
        d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        if d.tzinfo is None:
            d = d.replace(tzinfo=ZoneInfo(tz or "UTC"))
    return d.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def cal_date(v):
    if v is None:
        return None
    m = re.match(r"^(\d{4})(?:-(\d\d))?(?:-(\d\d))?", v)
    return date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)).isoformat()


def e164(v, country):
    if v is None:
        return None
    digits = re.sub(r"[^0-9]", "", v)
    us = (country or "US").upper() in ("US", "USA", "CA", "CAN")
    if v.strip().startswith("+"):
        e = "+" + digits
    elif us and len(digits) == 10:
        e = "+1" + digits
    elif us and len(digits) == 11 and digits[0] == "1":
        e = "+" + digits
    else:
        return None
    if e.startswith("+1"):
        n = e[2:]
        if not re.match(r"^[2-9]\d\d[2-9]\d{6}$", n) or n[:3] == "555" or n[1:3] == "11" or n[4:6] == "11":
            return None
    return e if re.match(r"^\+[1-9]\d{6,14}$", e) else None


def primary(cc, preferred):
    codings = (cc or {}).get("coding") or []
    best = None
    for i, c in enumerate(codings):
        key = (0 if c.get("system") == preferred else 1, 0 if c.get("userSelected") is True else 1, i)
        if best is None or key < best[0]:
            best = (key, c)
    return best[1] if best else None


def system_name(uri):
    return None if uri is None else SYSTEMS.get(uri, uri)


def num(v):
    return None if v is None else Decimal(str(v))


def read_inputs(dirs):
    """(resources in load order, counts of resources per type, skipped files)"""
    out, skipped = [], []
    files = []
    for d in dirs:
        for name in sorted(os.listdir(d)):
            if re.search(r"\.(nd)?json$", name, re.I):
                files.append((d, name))
    for d, name in files:
        path = os.path.join(d, name)
        if name.lower().endswith(".ndjson"):
            if not re.match(r"^[A-Z][A-Za-z]+[._]", name):
                skipped.append(name)
                continue
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        out.append((name, json.loads(line, parse_float=Decimal), None))
        else:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh, parse_float=Decimal)
            if doc.get("resourceType") == "Bundle":
                for e in doc.get("entry", []):
                    out.append((name, e["resource"], e.get("fullUrl")))
            else:
                out.append((name, doc, None))
    return out, skipped


def main():
    psql, dirs = sys.argv[1], sys.argv[2:]
    inputs, skipped = read_inputs(dirs)
    # last copy wins; urls per file
    res = {}
    urls = {}
    idents = {}
    for fname, r, full in inputs:
        key = r["resourceType"] + "/" + r["id"]
        res[key] = (fname, r)
        if full:
            urls[(fname, full)] = key
        for i in r.get("identifier", []) or []:
            idents.setdefault((r["resourceType"], "%s|%s" % (i.get("system", ""), i.get("value", ""))), key)
        res.pop(key)
        res[key] = (fname, r)

    def resolve(fname, ref):
        if ref is None:
            return None
        if ref.startswith("urn:"):
            return urls.get((fname, ref))
        if "?identifier=" in ref:
            t, ident = ref.split("?identifier=", 1)
            return idents.get((t, ident.replace("%7C", "|")))
        m = re.search(r"(?:^|/)([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$", ref)
        return m.group(1) if m else None

    # patients' time zones
    tzs = {}
    expected = {e: {} for e in ("account", "contact", "encounter", "condition", "observation", "procedure",
                                 "immunization", "medication", "allergy")}
    codings = {}

    def home(lst):
        lst = lst or []
        for a in lst:
            if a.get("use") == "home":
                return a
        return lst[0] if lst else None

    for key, (fname, r) in res.items():
        t = r["resourceType"]
        if t == "Organization":
            kind = "medical_center"
            for ty in r.get("type", []) or []:
                if any(c.get("code") in ("ins", "pay") for c in ty.get("coding", []) or []):
                    kind = "insurer"
            expected["account"][key] = {"external_id": r["id"], "name": r.get("name", "Organization " + r["id"]), "kind": kind}
        elif t in ("Patient", "Practitioner"):
            addr = home(r.get("address"))
            tz = state_tz(addr.get("state")) if (addr and t == "Patient") else None
            if t == "Patient":
                tzs[r["id"]] = tz
            names = [n for n in r.get("name", []) or [] if n.get("use") not in ("old", "maiden")]
            names.sort(key=lambda n: 0 if n.get("use") == "official" else 1)
            nm = names[0] if names else {}
            tel = [x for x in r.get("telecom", []) or [] if x.get("use") != "old"]
            emails = [x for x in tel if x.get("system") == "email" and re.match(r"^[^@\s]+@[^@\s]+$", x.get("value", ""))]
            emails.sort(key=lambda x: x.get("rank", 1 << 30))
            country = addr.get("country") if addr else None
            phones = [(i, x) for i, x in enumerate(tel) if x.get("system") in ("phone", "sms") and e164(x.get("value"), country)]
            phones.sort(key=lambda p: (0 if (p[1].get("use") == "mobile" or p[1].get("system") == "sms") else 1,
                                       p[1].get("rank", 1 << 30), p[0]))
            comm = r.get("communication", []) or []
            comm = sorted(enumerate(comm), key=lambda c: (0 if c[1].get("preferred") is True else 1, c[0]))
            lang = None
            if comm:
                l = comm[0][1].get("language", {})
                lang = (l.get("coding") or [{}])[0].get("code") or l.get("text")

            def ext_text(url):
                for e in r.get("extension", []) or []:
                    if e.get("url") == url:
                        for s in e.get("extension", []) or []:
                            if s.get("url") == "text":
                                return s.get("valueString")
                return None
            email = emails[0]["value"] if emails else None
            deceased = None
            if "deceasedDateTime" in r:
                deceased = instant(r["deceasedDateTime"], tz)
            elif r.get("deceasedBoolean") is True:
                deceased = "-infinity"
            expected["contact"][key] = {
                "external_id": r["id"] if t == "Patient" else key,
                "first_name": " ".join(nm.get("given", [])) or None if nm.get("given") else None,
                "last_name": nm.get("family"),
                "birthdate": cal_date(r.get("birthDate")),
                "gender": r.get("gender", "unknown"),
                "email": email,
                "phone": e164(phones[0][1]["value"], country) if phones else None,
                "address_line": ", ".join(addr.get("line", [])) or None if addr and addr.get("line") else None,
                "city": addr.get("city") if addr else None, "state": addr.get("state") if addr else None,
                "postal_code": addr.get("postalCode") if addr else None, "country": country,
                "time_zone": tz, "status": "inactive" if r.get("active") is False else "active",
                "contact_type": t.lower(),
                "preferred_channel": "email" if email else ("letter" if addr else None),
                "deceased_at": deceased, "language": lang,
                "race": ext_text("http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"),
                "ethnicity": ext_text("http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"),
            }

    def patient_of(fname, r):
        ref = (r.get("patient") if r["resourceType"] in ("Immunization", "AllergyIntolerance") else r.get("subject")) or {}
        tgt = resolve(fname, ref.get("reference"))
        return tgt.split("/", 1)[1]

    def encounter_of(fname, r):
        el = "context" if r["resourceType"] == "MedicationStatement" else "encounter"
        tgt = resolve(fname, (r.get(el) or {}).get("reference"))
        if tgt and tgt.startswith("Encounter/") and tgt in res:
            return tgt.split("/", 1)[1]
        return None

    def coded(part, element, preferred, default_system):
        cc = part.get(element) or {}
        p = primary(cc, preferred)
        return {"code": p.get("code") if p else None,
                "code_system": system_name(p.get("system")) if p and p.get("system") else SYSTEMS[default_system],
                "description": cc.get("text") or (p.get("display") if p else None)}

    def add_codings(entity, key, part, elements):
        for element, preferred in elements:
            cc = part.get(element)
            if not cc:
                continue
            p = primary(cc, preferred)
            codings[(entity, key, element)] = [
                (system_name(c.get("system")), c.get("code"), c.get("display"), c is p) for c in cc.get("coding", []) or []]

    wellness = {"185349003", "410620009", "162673000", "410621008", "185346005", "698314001"}
    classes = {"EMER": "emergency", "IMP": "inpatient", "ACUTE": "inpatient", "NONAC": "inpatient",
               "SS": "outpatient", "OBSENC": "outpatient", "PRENC": "outpatient", "HH": "home", "VR": "virtual"}
    skipped_status = {}
    for key, (fname, r) in res.items():
        t = r["resourceType"]
        if t not in MAPPED or t in ("Patient", "Practitioner", "Organization"):
            continue
        pid = patient_of(fname, r)
        tz = tzs.get(pid)
        if t == "Encounter":
            ty = (r.get("type") or [{}])[0]
            p = primary(ty, "http://snomed.info/sct")
            cls = (r.get("class") or {}).get("code")
            expected["encounter"][key] = {
                "external_id": r["id"], "patient": pid,
                "class": ("wellness" if p and p.get("code") in wellness else "ambulatory") if cls == "AMB" else classes.get(cls, "other"),
                "code": p.get("code") if p else None,
                "code_system": system_name(p.get("system")) if p and p.get("system") else "SNOMED",
                "description": ty.get("text") or (p.get("display") if p else None),
                "start_at": instant((r.get("period") or {}).get("start"), tz),
                "end_at": instant((r.get("period") or {}).get("end"), tz)}
            continue
        status = r.get("status")
        ver = (((r.get("verificationStatus") or {}).get("coding") or [{}])[0]).get("code")
        if (t in ("Procedure", "Immunization") and status == "not-done") or status == "entered-in-error" or ver == "entered-in-error":
            skipped_status[t] = skipped_status.get(t, 0) + 1
            continue
        enc = encounter_of(fname, r)
        base = {"patient": pid, "encounter": enc}
        if t == "Condition":
            cs = r.get("clinicalStatus")
            if isinstance(cs, dict):
                st = ((cs.get("coding") or [{}])[0]).get("code")
            elif cs is not None:
                st = cs
            else:
                st = "resolved" if ("abatementDateTime" in r or "abatementPeriod" in r) else "active"
            row = dict(base, **coded(r, "code", "http://snomed.info/sct", "http://snomed.info/sct"),
                       clinical_status=st,
                       onset_date=cal_date(r.get("onsetDateTime") or (r.get("onsetPeriod") or {}).get("start")),
                       abatement_date=cal_date(r.get("abatementDateTime") or (r.get("abatementPeriod") or {}).get("start")))
            expected["condition"][key] = row
            add_codings("condition", key, r, [("code", "http://snomed.info/sct")])
        elif t == "Observation":
            eff = instant(r.get("effectiveDateTime") or r.get("effectiveInstant") or (r.get("effectivePeriod") or {}).get("start"), tz)
            parts = [(key, r)] + [("%s#component[%d]" % (key, i), c) for i, c in enumerate(r.get("component", []) or [])]
            for k, part in parts:
                vq = part.get("valueQuantity") or {}
                vn = num(vq.get("value")) if "value" in vq else (num(part["valueInteger"]) if "valueInteger" in part else None)
                if "valueCodeableConcept" in part:
                    vcc = part["valueCodeableConcept"]
                    p = primary(vcc, "http://snomed.info/sct") or {}
                    vt = vcc.get("text") or p.get("display") or p.get("code")
                elif "valueString" in part:
                    vt = part["valueString"]
                elif "valueBoolean" in part:
                    vt = "true" if part["valueBoolean"] else "false"
                elif "valueDateTime" in part:
                    vt = part["valueDateTime"]
                else:
                    vt = None
                expected["observation"][k] = dict(base, **coded(part, "code", "http://loinc.org", "http://loinc.org"),
                                                  value_numeric=vn, value_text=vt, unit=vq.get("unit") or vq.get("code"),
                                                  effective_at=eff)
                add_codings("observation", k, part, [("code", "http://loinc.org"), ("valueCodeableConcept", "http://snomed.info/sct")])
        elif t == "Procedure":
            expected["procedure"][key] = dict(base, **coded(r, "code", "http://snomed.info/sct", "http://snomed.info/sct"),
                                              performed_at=instant(r.get("performedDateTime") or (r.get("performedPeriod") or {}).get("start"), tz))
            add_codings("procedure", key, r, [("code", "http://snomed.info/sct")])
        elif t == "Immunization":
            expected["immunization"][key] = dict(base, **coded(r, "vaccineCode", "http://hl7.org/fhir/sid/cvx", "http://hl7.org/fhir/sid/cvx"),
                                                 administered_at=instant(r.get("occurrenceDateTime"), tz))
            add_codings("immunization", key, r, [("vaccineCode", "http://hl7.org/fhir/sid/cvx")])
        elif t in ("MedicationRequest", "MedicationStatement"):
            rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
            expected["medication"][key] = dict(base, **coded(r, "medicationCodeableConcept", rx, rx),
                                               start_at=instant(r.get("authoredOn") or r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start"), tz),
                                               stop_at=instant((r.get("effectivePeriod") or {}).get("end"), tz))
            add_codings("medication", key, r, [("medicationCodeableConcept", rx)])
        elif t == "AllergyIntolerance":
            expected["allergy"][key] = dict(base, **coded(r, "code", "http://snomed.info/sct", "http://snomed.info/sct"),
                                            start_at=instant(r.get("onsetDateTime") or (r.get("onsetPeriod") or {}).get("start") or r.get("recordedDate"), tz),
                                            stop_at=instant(r.get("lastOccurrence"), tz))
            add_codings("allergy", key, r, [("code", "http://snomed.info/sct")])

    # What the importer stored.
    ts = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    cols = {
        "account": "t.external_id, t.name, t.kind",
        "contact": ("t.external_id, t.first_name, t.last_name, t.birthdate::text AS birthdate, t.gender, t.email, t.phone, "
                    "t.address_line, t.city, t.state, t.postal_code, t.country, t.time_zone, t.status, t.contact_type, "
                    "t.preferred_channel, CASE WHEN t.deceased_at = '-infinity' THEN '-infinity' ELSE " + ts % "t.deceased_at" +
                    " END AS deceased_at, t.language, t.race, t.ethnicity"),
        "encounter": ("t.external_id, p.external_id AS patient, t.class, t.code, t.code_system, t.description, " +
                      ts % "t.start_at" + " AS start_at, " + ts % "t.end_at" + " AS end_at"),
    }
    common = "p.external_id AS patient, e.external_id AS encounter, t.code, t.code_system, t.description, "
    cols["condition"] = common + "t.clinical_status, t.onset_date::text AS onset_date, t.abatement_date::text AS abatement_date"
    cols["observation"] = common + "t.value_numeric::text AS value_numeric, t.value_text, t.unit, " + ts % "t.effective_at" + " AS effective_at"
    cols["procedure"] = common + ts % "t.performed_at" + " AS performed_at"
    cols["immunization"] = common + ts % "t.administered_at" + " AS administered_at"
    cols["medication"] = common + ts % "t.start_at" + " AS start_at, " + ts % "t.stop_at" + " AS stop_at"
    cols["allergy"] = cols["medication"]
    sql = ["SET TIME ZONE 'UTC';"]
    for ent, c in cols.items():
        joins = ""
        if ent not in ("account", "contact"):
            joins = " JOIN outreach.contact p ON p.id = t.patient_id"
        if ent not in ("account", "contact", "encounter"):
            joins += " LEFT JOIN outreach.encounter e ON e.id = t.encounter_id"
        sql.append("SELECT '%s', coalesce(json_object_agg(m.source_key, (SELECT to_json(x) FROM (SELECT %s) x)), '{}'), "
                   "(SELECT count(*) FROM outreach.%s) FROM outreach.fhir_source m JOIN outreach.%s t ON t.id = m.row_id%s "
                   "WHERE m.entity = '%s';" % (ent, c, ent, ent, joins, ent))
    sql.append("SELECT 'codings', coalesce(json_agg(json_build_array(m.source_key, c.element, c.ordinal, c.code_system, c.code, "
               "c.display, c.is_primary) ORDER BY m.source_key, c.element, c.ordinal), '[]'), (SELECT count(*) FROM outreach.fhir_coding) "
               "FROM outreach.fhir_coding c JOIN outreach.fhir_source m ON m.entity = c.entity AND m.row_id = c.row_id "
               "WHERE c.entity <> 'encounter';")
    out = subprocess.run([psql, "-X", "-qtA", "-F", "\t", "-v", "ON_ERROR_STOP=1"], input="\n".join(sql),
                         capture_output=True, text=True, check=True).stdout
    actual = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        ent, data, n = line.split("\t")
        actual[ent] = (json.loads(data, parse_float=Decimal), int(n))

    for ent, exp in expected.items():
        got, n = actual[ent]
        problems = []
        if ent in ("contact", "account", "encounter") or True:
            if set(exp) != set(got):
                missing = sorted(set(exp) - set(got))[:3]
                extra = sorted(set(got) - set(exp))[:3]
                problems.append("rows differ: missing %s, unexpected %s" % (missing, extra))
        fields = 0
        for k, row in exp.items():
            g = got.get(k)
            if g is None:
                continue
            for f, v in row.items():
                fields += 1
                gv = g.get(f)
                if f == "value_numeric" and gv is not None:
                    gv = Decimal(gv)
                if v != gv:
                    problems.append("%s %s: expected %r, stored %r" % (k, f, v, gv))
        if n != len(exp) and ent != "contact":
            problems.append("table has %d rows, the files give %d" % (n, len(exp)))
        if problems:
            print("not ok - %s: %d of %d fields differ; first: %s" % (ent, len(problems), fields, "; ".join(problems[:3])))
        else:
            print("ok - %s: all %d rows, %d fields as in the files" % (ent, len(exp), fields))

    got_codings = {}
    for sk, el, ordinal, cs, code, disp, prim in actual["codings"][0]:
        got_codings.setdefault((sk, el), []).append((cs, code, disp, prim))
    exp_codings = {(k, el): v for (ent, k, el), v in codings.items()}
    bad = [k for k in set(exp_codings) | set(got_codings) if exp_codings.get(k) != got_codings.get(k)]
    if bad:
        k = sorted(bad)[0]
        print("not ok - codings: %d CodeableConcepts differ; first %s: expected %r, stored %r"
              % (len(bad), k, exp_codings.get(k), got_codings.get(k)))
    else:
        print("ok - codings: every coding of %d CodeableConcepts kept with its system, one primary each" % len(exp_codings))

    # unmapped resource types, as the files give them
    counts = {}
    for _, r in res.values():
        if r["resourceType"] not in MAPPED:
            counts[r["resourceType"]] = counts.get(r["resourceType"], 0) + 1
    print("UNMAPPED " + json.dumps(counts, sort_keys=True))
    print("SKIPPED_FILES " + ",".join(sorted(skipped)))


if __name__ == "__main__":
    main()
