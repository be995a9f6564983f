"""The national medical-insurance information platform's shapes (国家医疗保障信息平台, 两定机构
接口规范), as hospital HIS systems already send and read them: 3101/3102 (明细审核事前/事中分析),
2204/2301 (门诊/住院费用明细上传, pre-checked), 3103 (事前事中服务反馈: the clerk's disposition).

``envelope`` reads the outer message and renders the answer envelope; ``orders`` and ``fees``
turn a request's orders or fee rows into check lines and the verdicts into ``output.result``;
``findings`` renders one finding the platform's way and records what was answered;
``dispositions`` records 3103; ``service`` runs one request; ``endpoints`` is its HTTP.
Field meanings, the sources they were read from and the choices made where the specification
is silent: docs/integrating-his.md.
"""
