"""Static demo vocabulary: enforcement matters, legal provisions, roads, names, documents.

Everything here is illustrative demo data for a Shanghai-like city. The provisions cite real
statutes and keep each article's fine range as the demo's penalty catalogue (the maximum of a
range is what makes a penalty top-tier, 顶格); it is not legal advice and not a complete list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PartyType = Literal["individual", "business", "other"]


@dataclass(frozen=True)
class Provision:
    """A legal provision with its fine range per party type (元)."""

    key: str
    text: str
    ranges: dict[str, tuple[float, float]]

    def range_for(self, party_type: str) -> tuple[float, float]:
        return self.ranges.get(party_type) or next(iter(self.ranges.values()))


PROVISIONS: dict[str, Provision] = {
    p.key: p
    for p in (
        Provision(
            "shirong-tanfan",
            "《上海市市容环境卫生管理条例》第二十四条",
            {"individual": (50, 500), "business": (500, 5000)},
        ),
        Provision(
            "shirong-guanggao",
            "《上海市市容环境卫生管理条例》第四十八条",
            {"business": (1000, 10000), "individual": (500, 5000)},
        ),
        Provision(
            "jianzhu-laji",
            "《城市建筑垃圾管理规定》第二十六条",
            {"business": (5000, 50000), "individual": (50, 200)},
        ),
        Provision(
            "guihua-weijian",
            "《中华人民共和国城乡规划法》第六十四条",
            {"business": (20000, 200000), "individual": (5000, 50000)},
        ),
        Provision(
            "zaosheng-shehui",
            "《中华人民共和国噪声污染防治法》第八十二条",
            {"business": (2000, 20000), "individual": (200, 1000)},
        ),
        Provision(
            "zaosheng-shigong",
            "《中华人民共和国噪声污染防治法》第七十七条",
            {"business": (10000, 100000)},
        ),
        Provision(
            "daqi-youyan",
            "《中华人民共和国大气污染防治法》第一百一十八条",
            {"business": (5000, 50000)},
        ),
        Provision(
            "wuzhao-jingying",
            "《无证无照经营查处办法》第十三条",
            {"business": (0, 10000), "individual": (0, 10000)},
        ),
        Provision(
            "shipin-124",
            "《中华人民共和国食品安全法》第一百二十四条",
            {"business": (50000, 100000)},
        ),
        Provision(
            "shipin-126",
            "《中华人民共和国食品安全法》第一百二十六条",
            {"business": (5000, 50000)},
        ),
        Provision(
            "zulin-qunzu",
            "《上海市居住房屋租赁管理办法》第四十二条",
            {"individual": (10000, 100000), "business": (10000, 100000)},
        ),
    )
}

PROVISION_BY_TEXT: dict[str, Provision] = {p.text: p for p in PROVISIONS.values()}


@dataclass(frozen=True)
class Matter:
    """An enforcement matter (执法事项) as 12345 citizens and case files name it."""

    code: str
    name: str
    unit_kind: str  # cgzf / scjg / sthj / zjw: the district department responsible
    delegated: bool  # 赋权街镇: handled by the street's enforcement team
    weight: float
    provisions: tuple[str, ...]
    business_kinds: tuple[str, ...]  # empty: the party is usually an individual
    descriptions: tuple[str, ...]


MATTERS: tuple[Matter, ...] = (
    Matter(
        "ZDJY",
        "占道经营",
        "cgzf",
        True,
        16,
        ("shirong-tanfan",),
        ("水果店", "早餐店", "小吃店"),
        (
            "市民反映{addr}附近有流动摊贩占用人行道经营{goods}，{when}尤其严重，影响行人通行，要求处理。",
            "{addr}{biz}长期将货架摆到店外人行道上经营，多次劝说无效，希望城管部门管一管。",
            "来电人称{addr}路口{when}聚集多个小摊贩，占道经营，垃圾遍地，存在安全隐患。",
        ),
    ),
    Matter(
        "WFJS",
        "违法建设",
        "cgzf",
        True,
        9,
        ("guihua-weijian",),
        (),
        (
            "市民反映{addr}楼顶有人正在搭建彩钢板房，疑似违法建设，要求核查。",
            "{addr}底楼住户擅自破墙开门并搭建阳光房，占用小区公共绿地，要求拆除。",
            "来电人称{addr}有人在天井内加盖二层建筑，{when}一直在施工，怀疑未经审批。",
        ),
    ),
    Matter(
        "ZYRM",
        "噪音扰民",
        "cgzf",
        True,
        12,
        ("zaosheng-shehui",),
        ("KTV", "酒吧", "棋牌室"),
        (
            "市民反映{addr}{biz}{when}音响声音很大，严重影响周边居民休息，要求处理。",
            "{addr}沿街商铺使用高音喇叭招揽顾客，{when}不停播放，噪音扰民。",
            "来电人称楼下{biz}营业到凌晨，噪声扰民，多次与经营者沟通无果。",
        ),
    ),
    Matter(
        "YYWR",
        "油烟污染",
        "sthj",
        False,
        10,
        ("daqi-youyan",),
        ("餐饮店", "烧烤店", "面馆"),
        (
            "市民反映{addr}{biz}油烟直排，未安装油烟净化设施，{when}整栋楼都是油烟味。",
            "{addr}{biz}排烟管道直接对着居民窗户，油烟污染严重，要求环保部门查处。",
            "来电人称{addr}底商{biz}露天烧烤，烟雾大，影响周边居民生活。",
        ),
    ),
    Matter(
        "WZJY",
        "无证经营",
        "scjg",
        False,
        8,
        ("wuzhao-jingying",),
        ("小吃店", "美容店", "便利店"),
        (
            "市民反映{addr}{biz}未悬挂营业执照，怀疑无证无照经营，要求核查。",
            "{addr}有人在居民楼内开设{biz}，无任何经营证照，人员进出频繁。",
        ),
    ),
    Matter(
        "SPAQ",
        "食品安全",
        "scjg",
        False,
        9,
        ("shipin-124", "shipin-126"),
        ("超市", "餐饮店", "食品店"),
        (
            "市民反映在{addr}{biz}购买的{goods}已过保质期，食用后身体不适，要求查处。",
            "{addr}{biz}后厨卫生脏乱，有老鼠出没，食品原料随地堆放，存在食品安全隐患。",
            "来电人称{addr}{biz}销售的{goods}来源不明，无任何标签，要求市场监管部门检查。",
        ),
    ),
    Matter(
        "ZTTD",
        "渣土偷倒",
        "cgzf",
        False,
        6,
        ("jianzhu-laji",),
        ("运输", "建筑"),
        (
            "市民反映{when}有渣土车在{addr}附近空地偷倒建筑垃圾，已堆成小山，要求查处。",
            "{addr}路边被倾倒大量装修垃圾和渣土，疑似{biz}车辆所为，影响市容。",
        ),
    ),
    Matter(
        "QZ",
        "群租",
        "zjw",
        True,
        7,
        ("zulin-qunzu",),
        ("中介",),
        (
            "市民反映{addr}一套房屋被隔成多间出租，居住十余人，存在消防隐患，要求整治群租。",
            "{addr}房屋被{biz}改造成隔断间出租，人员复杂，{when}吵闹不断。",
        ),
    ),
    Matter(
        "GGP",
        "广告牌",
        "cgzf",
        True,
        6,
        ("shirong-guanggao",),
        ("广告", "商贸"),
        (
            "市民反映{addr}{biz}店招广告牌破损松动，大风天存在坠落风险，要求处理。",
            "{addr}沿街擅自设置大型户外广告牌，遮挡居民采光，疑似未经审批。",
        ),
    ),
    Matter(
        "YJSG",
        "夜间施工",
        "cgzf",
        False,
        8,
        ("zaosheng-shigong",),
        ("建筑",),
        (
            "市民反映{addr}工地{when}仍在施工，打桩声、机械声不断，严重影响休息。",
            "{addr}{biz}承建的工地夜间混凝土浇筑，噪声很大，未见夜间施工许可公示。",
        ),
    ),
)

MATTER_BY_CODE: dict[str, Matter] = {m.code: m for m in MATTERS}

DISTRICT_WEIGHTS: dict[str, float] = {
    "310101": 0.65, "310104": 1.1, "310105": 0.69, "310106": 0.97, "310107": 1.2,
    "310109": 0.7, "310110": 1.2, "310112": 2.7, "310113": 2.2, "310114": 1.8,
    "310115": 5.7, "310116": 0.8, "310117": 1.9, "310118": 1.3, "310120": 1.1,
    "310151": 0.6,
}  # fmt: skip
"""Rough resident population (millions): busier districts get more complaints."""

ROADS: dict[str, tuple[str, ...]] = {
    "310101": ("南京东路", "淮海中路", "西藏南路", "复兴中路", "河南南路"),
    "310104": ("漕溪北路", "肇嘉浜路", "天钥桥路", "虹桥路", "田林路"),
    "310105": ("愚园路", "天山路", "延安西路", "仙霞路", "古北路"),
    "310106": ("南京西路", "延安中路", "共和新路", "大统路", "万荣路"),
    "310107": ("曹杨路", "长寿路", "真北路", "武宁路", "中山北路"),
    "310109": ("四川北路", "曲阳路", "大连西路", "东江湾路", "海伦路"),
    "310110": ("控江路", "四平路", "黄兴路", "国权路", "长阳路"),
    "310112": ("七莘路", "都市路", "虹梅南路", "沪闵路", "龙吴路"),
    "310113": ("牡丹江路", "友谊路", "淞宝路", "泰和路", "共康路"),
    "310114": ("博乐路", "塔城路", "城中路", "曹安公路", "嘉松北路"),
    "310115": ("张杨路", "世纪大道", "浦东南路", "川沙路", "东方路", "锦绣路"),
    "310116": ("卫零路", "龙航路", "卫清西路", "龙皓路", "金山大道"),
    "310117": ("人民北路", "中山中路", "荣乐东路", "沪亭北路", "九亭大街"),
    "310118": ("城中北路", "公园路", "华新路", "外青松公路", "淀山湖大道"),
    "310120": ("南桥路", "解放东路", "望园路", "金海公路", "环城东路"),
    "310151": ("八一路", "人民路", "北门路", "东门路", "城桥镇西门路"),
}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
GIVEN_CHARS = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英建华文华晓红玉兰志强海燕建国春梅丹慧佳怡子轩浩然欣怡宇航梓涵思远嘉豪雨萱俊杰晨曦一鸣"  # noqa: E501

BRANDS = (
    "鑫源", "福满", "佳禾", "恒盛", "锦江", "宏达", "瑞丰", "金鼎", "百味", "阿香",
    "老王", "兴旺", "聚福", "顺发", "东海", "华亨", "申城", "浦江", "鸿运", "嘉诚",
    "和记", "一品", "好又多", "满天星", "小杨", "阿强", "乐家", "新锦", "万家", "同顺",
)  # fmt: skip

BUSINESS_SUFFIX: dict[str, tuple[tuple[str, str], ...]] = {
    # kind → (name suffix, registration type: "company" or "sole" 个体工商户)
    "水果店": (("水果店", "sole"), ("果业有限公司", "company")),
    "早餐店": (("早餐店", "sole"), ("点心店", "sole")),
    "小吃店": (("小吃店", "sole"), ("餐饮店", "sole")),
    "KTV": (("娱乐有限公司", "company"), ("KTV", "company")),
    "酒吧": (("酒吧", "company"), ("餐饮管理有限公司", "company")),
    "棋牌室": (("棋牌室", "sole"),),
    "餐饮店": (("餐饮管理有限公司", "company"), ("餐馆", "sole"), ("饭店", "sole")),
    "烧烤店": (("烧烤店", "sole"), ("烤肉店", "sole")),
    "面馆": (("面馆", "sole"), ("拉面馆", "sole")),
    "美容店": (("美容美发店", "sole"), ("美甲店", "sole")),
    "便利店": (("便利店", "sole"), ("便利店有限公司", "company")),
    "超市": (("超市", "sole"), ("超市有限公司", "company")),
    "食品店": (("食品商行", "sole"), ("食品有限公司", "company")),
    "运输": (("运输有限公司", "company"), ("渣土运输有限公司", "company")),
    "建筑": (("建筑工程有限公司", "company"), ("建设集团有限公司", "company")),
    "中介": (("房地产经纪有限公司", "company"), ("房屋租赁有限公司", "company")),
    "广告": (("广告有限公司", "company"), ("广告装饰有限公司", "company")),
    "商贸": (("商贸有限公司", "company"), ("贸易商行", "sole")),
}

GOODS = ("水果", "蔬菜", "早点", "熟食", "小龙虾", "烤串", "奶茶", "牛奶", "肉制品", "糕点")
WHEN = ("每天晚上十点以后", "凌晨一两点", "每天早上六点前后", "周末全天", "近一周以来", "午休时间")

RETURN_REASONS_TERRITORIAL = (
    "属地管理，请街道处理",
    "该问题属于属地管理范畴，建议由所在街道综合执法队处置",
)
RETURN_REASONS_OTHER = (
    "非本单位职责，该事项不属于街镇赋权事项，请区职能部门处理",
    "经核实，该地址不在本辖区范围内，请重新派单",
    "反映内容涉及多个部门职责，请12345平台协调明确主办单位",
    "地址信息不全，无法定位，请补充具体门牌号后重新派单",
)
EXTENSION_REASONS = (
    "需协调多部门联合处置，申请延期",
    "当事人拒不配合，需进一步调查取证",
    "涉及历史遗留问题，需会同房管、规划部门共同研究",
)
# "属实" appears in, and only in, the outcomes of a confirmed violation (应立尽立 keyword).
OUTCOME_CONFIRMED = (
    "经现场核查，反映情况属实，违法行为成立，已责令当事人立即改正，并依法立案查处。",
    "执法队员现场检查，反映情况属实，存在违法行为，已制作现场检查笔录，拟依法立案。",
)
OUTCOME_RECTIFIED = (
    "经现场核查，当事人已当场整改完毕，执法队员将持续关注。",
    "已现场劝导，当事人已自行清理整改，问题已解决。",
)
OUTCOME_NOT_FOUND = (
    "经多次现场核查，未发现来电人反映的问题，已电话告知来电人。",
    "执法队员于{when}前往现场蹲守，未发现违法行为，将加强巡查。",
)
OUTCOME_CONSULTATION = ("已电话答复来电人相关政策规定及办理流程，来电人表示理解。",)

CONSULTATION_DESCRIPTIONS = (
    "来电人咨询在{addr}开设{biz}需要办理哪些证照，以及{matter}方面有何规定。",
    "来电人咨询对{matter}行为应向哪个部门投诉，处理时限是多久。",
)

MITIGATING = ("first_offence", "minor", "corrected", "cooperative", "voluntary_report")
AGGRAVATING = ("repeat_offence", "obstructed", "serious_harm")

LARGE_FINE: dict[str, float] = {"individual": 5000, "business": 50000, "other": 50000}
"""较大数额罚款: hearing notice and legal review (法制审核) expected from this amount up."""

FILING_DOCUMENTS = ("顶格处罚备案报告", "行政处罚决定书", "法制审核意见书", "集体讨论记录")

SIMPLE_DOCUMENTS = ("现场检查笔录", "当场行政处罚决定书", "送达回证")
