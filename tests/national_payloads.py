"""Requests in the national platform's shapes, built as public HIS code builds them — not from
claimgate's own models. Every member a public payload sends is kept (claimgate reads a few and
must ignore the rest); codes, ids, names and dates are replaced by this test world's. Where
each comes from:

- the envelope: oepnhisC/OpenHIS-Server ``yibao/info.py`` (``create_request_Data``: ``infno``,
  ``msgid`` = institution code + yyyyMMddHHmmss + 4 digits, …, ``enc_type``, ``input``);
- 3101/3102 ``input.data``: oepnhisC/OpenHIS-Server ``api/yibaofuzhu/shiqianfenxiAPI.py``
  (``shiQianFenXi``: the encounter's members and their values ``medins_type`` A1,
  ``medins_lv`` 05, ``med_mdtrt_type`` 1, ``matn_stas`` 0, ``insutype`` 310, ``reim_flag`` 1,
  ``out_setl_flag`` 2, ``trig_scen`` 2; ``FsiOrderDtos``: an order's members and the codes its
  comments give, 101 西药中成药, 09 西药, 01 甲类, 2 医师); binzhe12123/Medical
  ``SY.Com.Medical.Model/SYB/YYJGFW/SQMX3101.cs`` (the same members, with ``hilist_dosform``,
  ``hosplist_dosform``, ``drord_stop_date``);
- an inpatient stay (3102): oepnhisC/OpenHis-Web ``src/views/yibao/ShiQianFenXi.vue``
  (``fenXiZhuYuan``: ``med_mdtrt_type`` 2, ``dscg_date`` "9999-12-31 00:00:00" while not
  discharged);
- 2204 rows: liutao2019/IBORN_HIS_ALL ``MEDICAL/广州医保/API.GZSI/UI/frmPatientQuery.cs``
  (a row of 门诊费用明细信息上传2204: ``chrg_bchno`` 1001, ``dise_codg`` M03701, ``rx_circ_flag``
  1, ``med_list_codg`` 86901201000526, ``medins_list_codg`` 10512, ``det_item_fee_sumamt``
  2200, ``cnt`` 22, ``pric`` 10, ``bilg_dept_codg`` 1000 普通外科门诊, ``bilg_dr_codg`` 009999,
  ``hosp_appr_flag`` 1), sent as ``input.feedetail`` as that code sends it;
- 2301 rows: liutao2019/IBORN_HIS_ALL ``MEDICAL/顺德医保/佛山新医保接口/API.GZSI/Models/Request/
  RequestGzsiModel2301.cs`` (a row carries ``med_type``, ``init_feedetl_sn``, ``drord_no``);
- 3103: oepnhisC/OpenHIS-Server ``api/yibaofuzhu/shiqianfenxiAPI.py`` (``FanKuiXinXi``:
  ``warn_type`` 1, ``warns`` of ``warn_rslt_id``/``dspo_way``/``dspo_way_rea``), whose
  ``warn_rslt_id`` oepnhisC/OpenHis-Web ``src/views/yibao/ShiQianFenXi.vue`` takes from each
  3101 ``result`` entry's ``jr_id``.

Local codes are those the issue quotes from real payloads: doctors ``00129``, ``ys01``,
``D190``; institutions ``011134``, ``CDSDERMYY``; departments ``1000`` and ``222`` (the public
2204 rows' 开单科室编码).
"""

from __future__ import annotations

import copy
from typing import Any

ENVELOPE: dict[str, Any] = {
    "infno": "3101",
    "msgid": "H37080200001202611221030150001",
    "mdtrtarea_admvs": "370800",
    "insuplc_admdvs": "370800",
    "recer_sys_code": "13888",
    "dev_no": "",
    "dev_safe_info": "",
    "cainfo": "",
    "signtype": "",
    "infver": "V1.0",
    "opter_type": "2",
    "opter": "13888",
    "opter_name": "收费员甲",
    "inf_time": "2026-11-22 10:30:15",
    "fixmedins_code": "H37080200001",
    "fixmedins_name": "济宁市第一人民医院",
    "sign_no": "",
    "enc_type": "",
    "input": {},
}

ORDER: dict[str, Any] = {
    "rx_id": "RX0001",
    "rxno": "CF0001",
    "grpno": "1",
    "long_drord_flag": "0",
    "hilist_type": "101",
    "chrg_type": "09",
    "drord_bhvr": "0",
    "hilist_code": "86901201000526",
    "hilist_name": "氯化钠注射液",
    "hilist_dosform": "注射剂",
    "hilist_lv": "01",
    "hilist_pric": "1.50",
    "lv1_hosp_item_pric": "",
    "lv2_hosp_item_pric": "",
    "lv3_hosp_item_pric": "",
    "hilist_memo": "",
    "hosplist_code": "10512",
    "hosplist_name": "氯化钠注射液",
    "hosplist_dosform": "注射剂",
    "cnt": "1.00",
    "pric": "1.5000",
    "sumamt": "1.50",
    "ownpay_amt": "0",
    "selfpay_amt": "0",
    "spec": "250ml",
    "spec_unt": "瓶",
    "drord_begn_date": "2026-11-22 09:46:47",
    "drord_stop_date": "",
    "drord_dept_codg": "A01",
    "drord_dept_name": "内科",
    "drord_dr_codg": "D370802000001",
    "drord_dr_name": "王伟",
    "drord_dr_profttl": "2",
    "curr_drord_flag": "1",
}

ENCOUNTER: dict[str, Any] = {
    "fsi_diagnose_dtos": [
        {
            "dise_id": "ZD0001",
            "inout_dise_type": "1",
            "maindise_flag": "1",
            "dias_srt_no": "1",
            "dise_codg": "I10.x00x002",
            "dise_name": "高血压",
            "dise_date": "2026-11-22 09:46:47",
        }
    ],
    "fsi_order_dtos": [],
    "fsi_operation_dtos": [],
    "mdtrt_id": "MZ20261122000123",
    "medins_id": "H37080200001",
    "medins_name": "济宁市第一人民医院",
    "medins_admdvs": "370800",
    "medins_type": "A1",
    "medins_lv": "05",
    "wardarea_codg": "",
    "wardno": "",
    "bedno": "",
    "adm_date": "2026-11-22 09:40:00",
    "dscg_date": "2026-11-22 09:40:00",
    "dscg_main_dise_codg": "I10.x00x002",
    "dscg_main_dise_name": "高血压",
    "dr_codg": "D370802000001",
    "adm_dept_codg": "A01",
    "adm_dept_name": "内科",
    "dscg_dept_codg": "A01",
    "dscg_dept_name": "内科",
    "med_mdtrt_type": "1",
    "med_type": "11",
    "matn_stas": "0",
    "medfee_sumamt": "1.50",
    "ownpay_amt": "0",
    "selfpay_amt": "0",
    "acct_payamt": "",
    "ma_amt": "",
    "hifp_payamt": "",
    "setl_totlnum": "1",
    "insutype": "310",
    "reim_flag": "1",
    "out_setl_flag": "2",
}

PATIENT: dict[str, Any] = {
    "fsi_encounter_dtos": [],
    "fsi_his_data_dto": "",
    "patn_id": "BR0000123",
    "patn_name": "张三",
    "gend": "1",
    "brdy": "1980-01-01",
    "poolarea": "370800",
    "curr_mdtrt_id": "MZ20261122000123",
}

FEE_ROW: dict[str, Any] = {
    "feedetl_sn": "202611221111",
    "psn_no": "P0000000001",
    "mdtrt_id": "MZ20261122000123",
    "chrg_bchno": "1001",
    "dise_codg": "M03701",
    "rx_circ_flag": "1",
    "fee_ocur_time": "2026-11-22 09:30:00",
    "med_list_codg": "86901201000526",
    "medins_list_codg": "10512",
    "det_item_fee_sumamt": "2200",
    "cnt": "22",
    "pric": "10",
    "bilg_dept_codg": "1000",
    "bilg_dept_name": "普通外科门诊",
    "bilg_dr_codg": "009999",
    "bilg_dr_name": "医师乙",
    "hosp_appr_flag": "1",
}

# 2301 as the Foshan form sends it: a row carries 医疗类别 and the refund members.
INPATIENT_FEE_ROW: dict[str, Any] = {
    **FEE_ROW,
    "init_feedetl_sn": "",
    "drord_no": "YZ0001",
    "med_type": "21",
    "acord_dept_codg": "",
    "acord_dept_name": "",
    "orders_dr_code": "",
    "orders_dr_name": "",
    "tcmdrug_used_way": "",
    "etip_flag": "0",
    "etip_hosp_code": "",
    "dscg_tkdrug_flag": "0",
    "matn_fee_flag": "0",
    "memo": "",
}


def order(rx_id: str, **members: Any) -> dict[str, Any]:
    return {**copy.deepcopy(ORDER), "rx_id": rx_id, **members}


def encounter(orders: list[dict[str, Any]], **members: Any) -> dict[str, Any]:
    return {**copy.deepcopy(ENCOUNTER), "fsi_order_dtos": orders, **members}


def review(infno: str, encounters: list[dict[str, Any]], **envelope: Any) -> dict[str, Any]:
    """A 3101 (or 3102) message: one patient with these encounters."""
    patient = {**copy.deepcopy(PATIENT), "fsi_encounter_dtos": encounters}
    data = {
        "syscode": "HIS",
        "patient_dtos": [patient],
        "rule_ids": [],
        "task_id": "T20261122000001",
        "trig_scen": "2" if infno == "3101" else "5",
    }
    return {**copy.deepcopy(ENVELOPE), "infno": infno, "input": {"data": data}, **envelope}


def inpatient_stay(orders: list[dict[str, Any]], med_type: str) -> dict[str, Any]:
    """An inpatient encounter, still in hospital, as the public client sends it to 3102."""
    return encounter(
        orders,
        mdtrt_id="ZY20261120000045",
        adm_date="2026-11-20 23:10:00",
        dscg_date="9999-12-31 00:00:00",
        med_mdtrt_type="2",
        med_type=med_type,
    )


def fee_upload(infno: str, rows: list[dict[str, Any]], **envelope: Any) -> dict[str, Any]:
    """A 2204/2301 message with its rows where the upload carries them: ``input.feedetail``."""
    return {**copy.deepcopy(ENVELOPE), "infno": infno, "input": {"feedetail": rows}, **envelope}


def fee_row(sn: str, **members: Any) -> dict[str, Any]:
    return {**copy.deepcopy(FEE_ROW), "feedetl_sn": sn, **members}


def inpatient_fee_row(sn: str, **members: Any) -> dict[str, Any]:
    return {**copy.deepcopy(INPATIENT_FEE_ROW), "feedetl_sn": sn, **members}


def feedback(warns: list[dict[str, Any]], warn_type: str = "1", **envelope: Any) -> dict[str, Any]:
    """A 3103 message."""
    data = {"warn_type": warn_type, "warns": warns}
    return {**copy.deepcopy(ENVELOPE), "infno": "3103", "input": {"data": data}, **envelope}
