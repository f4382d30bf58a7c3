"""Realistic Chinese customer files for benchmarks: deterministic by seed, about a million rows in
a few seconds.

Surnames are weighted by their frequency in mainland China (the top 100 cover about 85% of
people, as in the 2020 national household register figures; polyphonic and compound surnames are
in the tail); given names have one or two characters from the names that generation was given
(建国, 秀英…, including polyphonic characters: 长, 乐, 朝, 重, 行); customers are mostly born
1940-1975 (the stores' members are middle-aged and elderly), about a third keep a lunar birthday;
phones are mobile numbers with real prefixes (13x/15x/18x/19x) and some landlines with their
area code, typed the ways staff type them. Each row carries its name's pinyin search keys
(``customer_service.customers.pinyin``), cached per surname and given name.

    uv run python bench/people.py --count 1000000 --seed 7 > people.csv

CSV on stdout (a header, then one row per file), progress on stderr.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import random
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import date
from typing import NamedTuple

from customer_service.customers.calendars import solar_to_lunar
from customer_service.customers.pinyin import name_search_keys


def _words(text: str) -> list[str]:
    """Space-separated data: long lists of names read better as text than as list literals."""
    return text.split()


# Per ten thousand people, the hundred commonest surnames (rounded; they sum to about 8,500).
TOP_SURNAMES: tuple[tuple[str, float], ...] = tuple(
    (s, float(w))
    for s, w in (
        part.split(":")
        for part in _words(
            "王:710 李:700 张:670 刘:530 陈:450 杨:310 黄:220 赵:210 吴:200 周:190 徐:150 孙:140 "
            "马:130 朱:130 胡:120 郭:110 何:110 林:100 高:100 罗:100 郑:90 梁:90 谢:80 宋:80 "
            "唐:80 许:70 韩:70 冯:70 邓:70 曹:70 彭:60 曾:60 肖:60 田:60 董:60 袁:60 潘:60 "
            "于:50 蒋:50 蔡:50 余:50 杜:50 叶:50 程:50 苏:50 魏:50 吕:50 丁:50 任:45 沈:45 "
            "姚:45 卢:45 姜:42 崔:42 钟:42 谭:40 陆:40 汪:40 范:40 金:38 石:38 廖:38 贾:36 "
            "夏:35 韦:35 付:35 方:34 白:32 邹:32 孟:31 熊:31 秦:31 邱:31 江:30 尹:29 薛:29 "
            "闫:28 段:28 雷:28 侯:28 龙:27 史:26 陶:26 黎:26 贺:25 顾:24 毛:24 郝:24 龚:24 "
            "邵:23 万:23 钱:22 严:22 覃:22 武:22 戴:21 莫:20 孔:20 向:20 汤:20"
        )
    )
)

# Less common surnames, sharing the remaining ~15% with weights falling along the list; the
# polyphonic (单 曾 解 仇 区 朴 查 翟 缪 乐 盖 卜…) and compound ones are here.
TAIL_SURNAMES: tuple[str, ...] = tuple(
    _words(
        "常 温 康 施 文 牛 樊 葛 邢 安 齐 易 乔 伍 庞 颜 倪 庄 聂 章 鲁 岳 翟 殷 詹 申 "
        "欧阳 耿 关 兰 焦 俞 左 柳 甘 祝 包 宁 尚 符 舒 阮 柯 纪 梅 童 凌 毕 单 季 裴 霍 涂 成 "
        "苗 谷 盛 曲 翁 冉 骆 蓝 路 游 辛 靳 管 柴 蒙 鲍 华 喻 祁 蒲 房 滕 屈 饶 解 牟 艾 尤 "
        "阳 时 穆 农 司 卓 古 吉 缪 简 车 项 连 芦 麦 褚 娄 窦 戚 岑 景 党 宫 费 卜 冷 晏 席 "
        "卫 米 柏 宗 瞿 桂 全 佟 应 臧 闵 苟 邬 边 卞 姬 师 和 仇 栾 隋 商 刁 沙 荣 巫 寇 桑 "
        "郎 甄 丛 仲 虞 敖 巩 明 佘 池 查 麻 苑 迟 邝 官 封 谈 匡 鞠 惠 荆 乐 冀 郁 胥 南 班 "
        "储 原 栗 燕 楚 鄢 劳 谌 奚 皮 粟 冼 蔺 楼 盘 满 闻 位 厉 伊 仝 区 郜 海 阚 花 权 强 "
        "帅 屠 豆 朴 盖 练 廉 禹 井 祖 漆 巴 丰 支 卿 国 狄 平 计 索 宣 晋 相 初 门 云 容 敬 "
        "来 扈 晁 芮 都 普 阙 浦 戈 伏 鹿 薄 邸 雍 辜 羊 阿 乌 母 裘 亓 修 邰 赫 杭 况 那 宿 "
        "鲜 印 逯 隆 茹 诸葛 司马 上官 长孙 尉迟 令狐 皇甫 慕容 东方 夏侯 司徒 端木 宇文 公孙"
    )
)
TAIL_SHARE = 0.15

# Whole given names common for people born 1930-1975, and single characters to combine.
MALE_NAMES = _words(
    "建国 建华 建军 建平 建新 建设 国强 国庆 国华 国栋 志强 志明 志刚 志勇 卫国 卫东 红兵 "
    "永强 永明 德明 德华 和平 解放 援朝 胜利 跃进 学军 向东 振华 振国 长江 长春 长林 长青 "
    "重阳 重庆 乐天 朝阳 朝晖 行健 卫红 爱国 树林 宝山 金山 福生 玉林 海涛 春生 秋生"
)
FEMALE_NAMES = _words(
    "秀英 桂英 秀兰 玉兰 桂兰 玉珍 淑珍 凤英 玉梅 秀珍 桂珍 淑英 玉英 秀云 桂芳 秀芳 丽华 "
    "红梅 红霞 美华 春梅 冬梅 海燕 晓燕 淑华 凤兰 金凤 翠花 素珍 月英 玉华 秀梅 长乐 乐怡 "
    "朝霞 慧敏 建英 爱华 爱珍 丽娟 美玲 彩霞 玉芬 桂香"
)
MALE_CHARS = "明伟军勇强刚平辉斌波华杰涛峰林海东亮成荣福贵祥生才山宝忠军志国建长乐朝重行和"
FEMALE_CHARS = "丽红芳敏静霞燕梅英兰珍萍玲娟华琴云莉凤艳丹秀桂玉淑美翠香芬琳乐朝"

MOBILE_PREFIXES = tuple(
    [str(p) for p in range(130, 140)] * 3  # the oldest ranges: most numbers of older people
    + [str(p) for p in (*range(150, 154), *range(155, 160))] * 2
    + [str(p) for p in range(180, 190)]
    + [str(p) for p in (190, 191, 192, 193, 195, 196, 197, 198, 199)]
)
# Area codes whose local numbers have eight digits.
AREA_CODES = _words(
    "010 020 021 022 023 024 025 027 028 029 0311 0371 0431 0451 0531 0532 0551 0571 0574 "
    "0591 0731 0755 0757 0769 0791 0851 0871 0898 0512 0510"
)
LANDLINE_SHARE = 0.08
LUNAR_SHARE = 0.3

COLUMNS = (
    "seq",
    "store",
    "name",
    "gender",
    "birthday",
    "birthday_calendar",
    "phone_typed",
    "phone",
    "phone_kind",
    "phone_tail",
    "name_keys",
)


class Person(NamedTuple):
    """One generated customer file (``phone`` is E.164, ``phone_typed`` as a person typed it)."""

    seq: int
    store: int
    name: str
    gender: str
    birthday: str
    birthday_calendar: str
    phone_typed: str
    phone: str
    phone_kind: str
    phone_tail: str
    name_keys: str


class _Weighted:
    """Weighted choice by one uniform draw and a bisection (faster than random.choices per row)."""

    def __init__(self, items: Sequence[str], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, u: float) -> str:
        return self.items[bisect.bisect_right(self.cumulative, u * self.total)]


def _surnames() -> _Weighted:
    top_total = sum(w for _, w in TOP_SURNAMES)
    # Zipf-like falling weights for the tail, scaled to its share of people.
    raw_tail = [1 / (rank + 10) for rank in range(len(TAIL_SURNAMES))]
    scale = top_total * TAIL_SHARE / (1 - TAIL_SHARE) / sum(raw_tail)
    return _Weighted(
        [s for s, _ in TOP_SURNAMES] + list(TAIL_SURNAMES),
        [w for _, w in TOP_SURNAMES] + [w * scale for w in raw_tail],
    )


def people(count: int, *, seed: int = 0, stores: int = 20) -> Iterator[Person]:
    """``count`` customer files, the same for the same seed (and Python's ``random``)."""
    rng = random.Random(seed)
    draw = rng.random
    surnames = _surnames()
    born_from, born_to = date(1940, 1, 1).toordinal(), date(1975, 12, 31).toordinal()
    young_from, young_to = date(1976, 1, 1).toordinal(), date(1995, 12, 31).toordinal()
    old_from, old_to = date(1930, 1, 1).toordinal(), date(1939, 12, 31).toordinal()
    lunar_of: dict[int, str] = {}
    keys_of: dict[str, str] = {}
    for seq in range(1, count + 1):
        gender = "female" if draw() < 0.56 else ("male" if draw() < 0.99 else "other")
        female = gender == "female" or (gender == "other" and draw() < 0.5)
        surname = surnames.pick(draw())
        if draw() < 0.25:
            given = rng.choice(FEMALE_CHARS if female else MALE_CHARS)
        elif draw() < 0.5:
            given = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
        else:
            chars = FEMALE_CHARS if female else MALE_CHARS
            given = rng.choice(chars) + rng.choice(chars)
        name = surname + given
        name_keys = keys_of.get(name)
        if name_keys is None:
            name_keys = keys_of[name] = name_search_keys(name).text

        u = draw()
        if u < 0.85:
            born = rng.randint(born_from, born_to)
        elif u < 0.95:
            born = rng.randint(young_from, young_to)
        else:
            born = rng.randint(old_from, old_to)
        if draw() < LUNAR_SHARE:
            birthday = lunar_of.get(born)
            if birthday is None:
                birthday = lunar_of[born] = str(solar_to_lunar(date.fromordinal(born)))
            calendar = "lunar"
        else:
            birthday, calendar = date.fromordinal(born).isoformat(), "solar"

        if draw() < LANDLINE_SHARE:
            area = rng.choice(AREA_CODES)
            local = f"{rng.randint(2, 8)}{rng.randrange(10_000_000):07d}"
            typed = f"{area}-{local}" if draw() < 0.7 else f"{area} {local[:4]} {local[4:]}"
            e164, kind = f"+86{area[1:]}{local}", "landline"
        else:
            digits = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(100_000_000):08d}"
            typed = digits if draw() < 0.7 else f"{digits[:3]} {digits[3:7]} {digits[7:]}"
            e164, kind = f"+86{digits}", "mobile"

        yield Person(
            seq,
            rng.randint(1, stores),
            name,
            gender,
            birthday,
            calendar,
            typed,
            e164,
            kind,
            e164[-4:],
            name_keys,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stores", type=int, default=20)
    args = parser.parse_args()

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(COLUMNS)
    started = time.perf_counter()
    step = max(args.count // 20, 1)
    for person in people(args.count, seed=args.seed, stores=args.stores):
        out.writerow(person)
        if person.seq % step == 0 or person.seq == args.count:
            elapsed = time.perf_counter() - started
            print(
                f"\r{person.seq:,}/{args.count:,} rows, {person.seq / elapsed:,.0f} rows/s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
