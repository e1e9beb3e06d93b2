"""Fixed pools the generator draws from: names, places, stores, catalogues.

Everything here is plain data built once per process; per-row work is a few lookups."""

from dataclasses import dataclass

from faker.providers.person.zh_CN import Provider as _ZhPerson

# Surnames with their real frequencies (Faker's zh_CN table, ~400 surnames).
SURNAMES: tuple[str, ...] = tuple(_ZhPerson.last_names)
SURNAME_WEIGHTS: tuple[float, ...] = tuple(_ZhPerson.last_names.values())

# Given names: the classic ones (born before the 1980s, Faker's list) and modern ones,
# the latter built from characters popular since the 1990s, one or two of them.
_FEMALE_CHARS = ("静丽敏燕婷雪慧玲琳颖欣怡佳悦涵萱雨晨思梦诗雅琪璐瑶婧倩蕾薇嘉洁"
                 "晓月楠可心妍彤梓若依紫馨媛露佩宁语歆芊蔓沁菲淼")
_MALE_CHARS = ("伟强磊杰涛斌超明辉鹏飞鑫波宇浩凯健俊帆旭龙林阳睿轩博文"
               "哲然一泽昊天志嘉铭皓宏锐翔晟逸航奕霖")


def _modern(chars: str) -> tuple[str, ...]:
    singles = list(chars)
    pairs = [a + b for a in chars for b in chars if a != b]
    # Two-character names are about three times as common as single ones.
    return tuple(singles * max(1, len(pairs) // (3 * len(singles))) + pairs)


GIVEN_FEMALE_CLASSIC: tuple[str, ...] = tuple(_ZhPerson.first_names_female)
GIVEN_MALE_CLASSIC: tuple[str, ...] = tuple(_ZhPerson.first_names_male)
GIVEN_FEMALE_MODERN = _modern(_FEMALE_CHARS)
GIVEN_MALE_MODERN = _modern(_MALE_CHARS)


@dataclass(frozen=True)
class City:
    region: str
    province: str
    name: str
    code: str
    weight: float  # share of customers and stores
    districts: tuple[str, ...]


CITIES: tuple[City, ...] = (
    City("华东", "上海", "上海", "SH", 9.0, ("静安", "徐汇", "浦东", "黄浦", "长宁", "闵行")),
    City("华北", "北京", "北京", "BJ", 8.0, ("朝阳", "海淀", "东城", "西城", "丰台")),
    City("华南", "广东", "广州", "GZ", 6.0, ("天河", "越秀", "海珠", "番禺")),
    City("华南", "广东", "深圳", "SZ", 6.5, ("南山", "福田", "罗湖", "宝安")),
    City("华东", "浙江", "杭州", "HZ", 5.0, ("西湖", "滨江", "拱墅", "上城")),
    City("西南", "四川", "成都", "CD", 5.0, ("锦江", "武侯", "高新", "青羊")),
    City("西南", "重庆", "重庆", "CQ", 4.0, ("渝中", "江北", "南岸", "沙坪坝")),
    City("华中", "湖北", "武汉", "WH", 4.0, ("江汉", "武昌", "洪山", "汉阳")),
    City("华东", "江苏", "南京", "NJ", 3.5, ("新街口", "河西", "江宁", "鼓楼")),
    City("华东", "江苏", "苏州", "SUZ", 3.5, ("工业园区", "姑苏", "吴中")),
    City("西北", "陕西", "西安", "XA", 3.0, ("雁塔", "碑林", "未央", "曲江")),
    City("华中", "湖南", "长沙", "CS", 3.0, ("五一广场", "岳麓", "开福", "雨花")),
    City("华北", "天津", "天津", "TJ", 2.5, ("和平", "南开", "河西")),
    City("华中", "河南", "郑州", "ZZ", 2.5, ("金水", "二七", "郑东新区")),
    City("华东", "山东", "青岛", "QD", 2.0, ("市南", "崂山", "李沧")),
    City("华东", "山东", "济南", "JN", 1.8, ("历下", "市中", "槐荫")),
    City("华东", "浙江", "宁波", "NB", 1.8, ("鄞州", "海曙", "江北")),
    City("华东", "福建", "厦门", "XM", 1.6, ("思明", "湖里", "集美")),
    City("华东", "福建", "福州", "FZ", 1.4, ("鼓楼", "台江", "仓山")),
    City("华东", "安徽", "合肥", "HF", 1.8, ("蜀山", "包河", "庐阳")),
    City("华南", "广东", "佛山", "FS", 1.5, ("禅城", "南海", "顺德")),
    City("华南", "广东", "东莞", "DG", 1.4, ("南城", "东城", "松山湖")),
    City("西南", "云南", "昆明", "KM", 1.4, ("五华", "盘龙", "官渡")),
    City("西南", "贵州", "贵阳", "GY", 1.0, ("云岩", "南明", "观山湖")),
    City("东北", "辽宁", "沈阳", "SY", 1.5, ("和平", "沈河", "浑南")),
    City("东北", "辽宁", "大连", "DL", 1.2, ("中山", "沙河口", "甘井子")),
    City("东北", "黑龙江", "哈尔滨", "HRB", 1.2, ("南岗", "道里", "香坊")),
    City("东北", "吉林", "长春", "CC", 1.0, ("朝阳", "南关", "净月")),
    City("华北", "河北", "石家庄", "SJZ", 1.0, ("长安", "桥西", "裕华")),
    City("华北", "山西", "太原", "TY", 0.9, ("小店", "迎泽", "杏花岭")),
    City("华东", "江西", "南昌", "NC", 1.0, ("东湖", "西湖", "红谷滩")),
    City("华南", "广西", "南宁", "NN", 1.0, ("青秀", "兴宁", "西乡塘")),
    City("华南", "海南", "海口", "HK", 0.7, ("龙华", "美兰", "秀英")),
    City("西北", "甘肃", "兰州", "LZ", 0.6, ("城关", "七里河", "安宁")),
    City("西北", "新疆", "乌鲁木齐", "URC", 0.6, ("天山", "沙依巴克", "新市")),
    City("华北", "内蒙古", "呼和浩特", "HHHT", 0.5, ("新城", "赛罕", "回民")),
    City("华东", "江苏", "无锡", "WX", 1.2, ("梁溪", "滨湖", "新吴")),
    City("华东", "浙江", "温州", "WZ", 1.0, ("鹿城", "瓯海", "龙湾")),
)
CITY_WEIGHTS: tuple[float, ...] = tuple(city.weight for city in CITIES)

MALLS: tuple[str, ...] = (
    "万象城", "大悦城", "万达广场", "银泰城", "恒隆广场", "太古里", "来福士", "龙湖天街",
    "吾悦广场", "印象城", "凯德广场", "新世界百货", "王府井百货", "德基广场", "国金中心",
    "久光百货", "天虹", "茂业百货", "SKP", "IFS", "万象汇", "砂之船奥莱",
)

# Mobile number prefixes of the three carriers, weighted roughly by subscribers.
PHONE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147",
    "150", "151", "152", "153", "155", "156", "157", "158", "159", "166", "173", "175",
    "176", "177", "178", "180", "181", "182", "183", "184", "185", "186", "187", "188",
    "189", "191", "198", "199",
)


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price_fen: int
    popularity: float


def _beauty() -> tuple[Product, ...]:
    rows = [
        ("LIP", "唇妆", "丝绒雾面口红", 16900, 9, ("#M01 玫瑰豆沙", "#M05 正红", "#M12 枫叶棕")),
        ("LIP", "唇妆", "水光镜面唇釉", 14900, 7, ("#G02 蜜桃乌龙", "#G08 西柚")),
        ("LIP", "唇妆", "柔雾唇泥", 12900, 5, ("#07 奶茶", "#11 复古红")),
        ("BAS", "底妆", "轻透持妆气垫", 24900, 8, ("01 象牙白", "02 自然色")),
        ("BAS", "底妆", "养肤粉底液 30ml", 29900, 5, ("N10 亮白", "N20 自然")),
        ("BAS", "底妆", "空气蜜粉 8g", 16900, 6, ("01 透明色",)),
        ("BAS", "底妆", "精准遮瑕盘", 13900, 3, ("三色",)),
        ("EYE", "眼妆", "九色眼影盘", 21900, 5, ("暖茶", "烟粉")),
        ("EYE", "眼妆", "极细防水眉笔", 6900, 7, ("深棕", "灰棕")),
        ("EYE", "眼妆", "纤长睫毛膏", 11900, 4, ("黑色",)),
        ("EYE", "眼妆", "丝滑眼线笔", 7900, 3, ("黑棕",)),
        ("SKN", "护肤", "修护精华液 30ml", 39900, 6, ("",)),
        ("SKN", "护肤", "水乳套装", 45900, 4, ("",)),
        ("SKN", "护肤", "保湿面霜 50g", 32900, 4, ("",)),
        ("SKN", "护肤", "玻尿酸面膜 10片", 9900, 9, ("",)),
        ("SKN", "护肤", "氨基酸洁面 120g", 8900, 6, ("",)),
        ("SKN", "护肤", "轻薄防晒乳 SPF50+", 15900, 5, ("",)),
        ("FRG", "香氛", "东方花香淡香水 50ml", 49900, 2, ("",)),
        ("GFT", "礼盒", "节日限定彩妆礼盒", 89900, 2, ("",)),
        ("GFT", "礼盒", "护肤焕颜礼盒", 129900, 1, ("",)),
        ("TRY", "小样", "明星单品体验装", 1990, 6, ("",)),
    ]
    return _expand("BT", rows)


def _liquor() -> tuple[Product, ...]:
    rows = [
        ("PRM", "高端白酒", "52度 窖藏 500ml", 149900, 4, ("",)),
        ("PRM", "高端白酒", "53度 酱香典藏 500ml", 269900, 2, ("",)),
        ("MID", "次高端白酒", "52度 特曲 500ml", 59900, 7, ("",)),
        ("MID", "次高端白酒", "45度 柔和 500ml", 45900, 6, ("",)),
        ("MID", "次高端白酒", "38度 头曲 500ml", 32900, 6, ("",)),
        ("POP", "光瓶酒", "42度 光瓶 500ml", 8900, 9, ("",)),
        ("POP", "光瓶酒", "52度 二曲 500ml", 5900, 8, ("",)),
        ("MIN", "小酒", "52度 小酒 100ml", 3900, 9, ("",)),
        ("MIN", "小酒", "品鉴装 50ml×6", 9900, 5, ("",)),
        ("GFT", "礼盒", "52度 双支礼盒 500ml×2", 199900, 3, ("",)),
        ("GFT", "礼盒", "生肖纪念礼盒", 399900, 1, ("",)),
        ("GFT", "礼盒", "宴席整箱 500ml×6", 269400, 2, ("",)),
        ("ACC", "文创周边", "分酒器套装", 19900, 2, ("",)),
        ("ACC", "文创周边", "定制酒杯", 9900, 2, ("",)),
        ("FRT", "果酒", "青梅酒 330ml", 6900, 5, ("",)),
        ("FRT", "果酒", "桂花米酒 500ml", 4900, 4, ("",)),
    ]
    return _expand("LQ", rows)


def _expand(prefix: str, rows: list) -> tuple[Product, ...]:
    products = []
    for code, category, name, price, popularity, variants in rows:
        for variant in variants:
            number = sum(1 for p in products if p.sku.startswith(f"{prefix}-{code}")) + 1
            products.append(Product(
                sku=f"{prefix}-{code}-{number:03d}",
                name=f"{name} {variant}".strip(),
                category=category,
                price_fen=price,
                popularity=popularity / len(variants),
            ))
    return tuple(products)


@dataclass(frozen=True)
class Catalog:
    key: str
    brand_name: str
    female_share: float  # of members whose gender is known
    products: tuple[Product, ...]


CATALOGS: dict[str, Catalog] = {
    "beauty": Catalog("beauty", "兰亭美妆", 0.86, _beauty()),
    "liquor": Catalog("liquor", "泸川酒业", 0.22, _liquor()),
}

REFUND_REASONS: tuple[str, ...] = (
    "不想要了", "拍错了/多拍了", "商品质量问题", "过敏", "物流太慢", "与描述不符", "七天无理由退货",
)
