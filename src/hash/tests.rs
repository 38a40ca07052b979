//! Published vectors: Kratos' own comparator tests (hashes made by other implementations) and
//! the Firebase scrypt README example; plus malformed and unknown inputs.

use super::*;

/// `(password, encoded)` pairs that must verify. Each is also checked with a wrong password.
const MATCHING: &[(&str, &str)] = &[
    // argon2 (Kratos hash/hasher_test.go)
    ("test", "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw"),
    ("test", "$argon2id$v=19$m=32,t=5,p=4$cm94YnRVOW5jZzFzcVE4bQ$fBxypOL0nP/zdPE71JtAV71i487LbX3fJI5PoTN6Lp4"),
    ("test", "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c"),
    // bcrypt; the other prefixes hash the same way
    ("test", "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"),
    ("test", "$2b$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"),
    ("test", "$2y$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"),
    ("test", "$2z$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"),
    ("test", "$2$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"),
    // pbkdf2
    (
        "test",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
    ),
    (
        "test",
        "$pbkdf2-sha512$i=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc",
    ),
    // scrypt (`ln` is N itself)
    (
        "test",
        "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    // Firebase scrypt: Kratos' vector and the firebase/scrypt README example
    (
        "8x4WjoDbSxJZdR",
        "$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSou7FOl6mChCyzpCPIQ7tku7nsQMTFtyOZSXXd7tjBa4NtimOx7v42Gv2SfzPQu1oxM2/k4SsbOu73wlKe1A==$Bw==$YE0dO4bwD4JnJafh6lZZfkp1MtKzuKAXQcDCJNJNyeCHairWHKENOkbh3dzwaCdizzOspwr/FITUVlnOAwPKyw==",
    ),
    (
        "user1password",
        "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$Bw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
    ),
    // LDAP salted SHA
    ("test123", "{SSHA}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a"),
    ("test123", "{SSHA256}czO44OTV17PcF1cRxWrLZLy9xHd7CWyVYplr1rOhuMlx/7IK"),
    (
        "test123",
        "{SSHA512}xPUl/px+1cG55rUH4rzcwxdOIPSB2TingLpiJJumN2xyDWN4Ix1WQG3ihnvHaWUE8MYNkvMi5rf0C9NYixHsE6Yh59M=",
    ),
    // SHA with a salting pattern
    ("test", "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ="),
    ("BwS^514g^cv@Z", "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$99h9net4BXl7qdTRaiGUobLROxM="),
    ("test", "$sha1$pf=Pz9zdGF0aWNQcmVmaXg/P3tTQUxUfXtQQVNTV09SRH0=$NW9wbWtnejAzcg==$SAAxMUn7jxckQXkBmsVF0nHwqso="),
    ("test", "$sha1$pf=e1BBU1NXT1JEfSUle1NBTFR9$NW9wbWtnejAzcg==$YX0AW8/MW5ojUlnzTaR43ucHCog="),
    ("test", "$sha1$pf=JHtQQVNTV09SRH0ke1NBTFR9JA==$NW9wbWtnejAzcg==$iE5n1yjX3oAdxRHwZ4u57I4LpQo="),
    ("test", "$sha256$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$0gfRVLCvtBCk20udLDEY5vNhujWx7RGjwRIS1ebMsLY="),
    ("test", "$sha256$pf=e1NBTFR9JCR7UEFTU1dPUkR9$NW9wbWtnejAzcg==$HokCOi9OtiZaZRvnkgemV3B4UUHpI7kA8zq/EZWH2NY="),
    (
        "test",
        "$sha512$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B19IkdmOY2Fytsz3QUwSWdGcUjbqwgJGTH0UYvw==",
    ),
    (
        "test",
        "$sha512$pf=e1NBTFR9JCR7UEFTU1dPUkR9$NW9wbWtnejAzcg==$1F9BPW8UtdJkZ9Dhlf+D4X4dJ9xfuH8y04EfuCP2k4aGPPq/aWxU9/xe3LydHmYW1/K3zu3NFO9ETVrZettz3w==",
    ),
    // MD5, plain and salted
    ("test", "$md5$CY9rzUYh03PK3k6DJie09g=="),
    ("ory", "$md5$ptoWyof5SobW+pbZu2QXoQ=="),
    ("test", "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$q+RdKCgc+ipCAcm5ChQwlQ=="),
    ("test", "$md5$pf=e1NBTFR9JCR7UEFTU1dPUkR9$MTIzNA==$ud392Z8rfZ+Ou7ZFXYLKbA=="),
    ("ory", "$md5$pf=e1BBU1NXT1JEfXtTQUxUfSQ/$MTIzNDU2Nzg5$8PhwWanVRnpJAFK4NUjR0w=="),
    // Unix crypt with the Kratos prefixes
    ("test", "$md5-crypt$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C/"),
    ("test", "$md5-crypt$$whuMjZj.HMFoaTaZRRtkO0"),
    ("ory", "$md5-crypt$xWMlm2eL$GGTOpgZu4p2k6ORprAu3b."),
    ("test", "$sha256-crypt$rounds=535000$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78"),
    ("ory", "$sha256-crypt$rounds=535000$awpcR7lDlnK/S7WE$vHU7KkQwyjfGz6u4MUi7.lH9htK/l63HloTsX1ZMz.3"),
    (
        "test",
        "$sha512-crypt$rounds=656000$3LVbIAVxR//cRajw$uuNasMW.RYxlGzIRFU1Was70BPSa933AjxhZIGJdJBOlqJAHlgqa0yuiuq5JHF/ryNGryJkj87G9i3G2HPSXg1",
    ),
    // glibc's crypt(3) test vectors for the default (omitted) rounds
    ("Hello world!", "$sha256-crypt$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    (
        "Hello world!",
        "$sha512-crypt$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    // HMAC: the base64 value is the hex text of the MAC, key "12345"
    ("test", "$hmac-md4$MWQ5ZTI4Nzc2Zjg4YmE2MTQ5YjQ0OTMyOGE4NWU4YjA=$MTIzNDU="),
    ("test", "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU="),
    ("test", "$hmac-sha1$NDMyNjcxZTUyY2Y2YTBmYjZjZDE2NjQxYjAwNjFiZjAwOGEzNWM5MA==$MTIzNDU="),
    ("test", "$hmac-sha224$YmUwYmYzM2EwNGRlNDE0YjQzNjBhNmIyOThmNmIyYzI4OWQyMzk3MDUwZDFjMzliYjVmMDMyOTQ=$MTIzNDU="),
    (
        "test",
        "$hmac-sha256$ZTAzMWJhMWMyOTM4YjFkMjgzZjkxOWExZGY5YWM2NmMxOTJhN2RkNzQ0MzJkNWZkNGFkYTI5OTk0MWJhMTA5Zg==$MTIzNDU=",
    ),
    (
        "test",
        "$hmac-sha384$ZWEyMGM3NGE4Y2UzMTljNTdjZTlhZGQyYTZjNDE0MGQ4YjMwYWIwOWM4OTRiNWQ4MmZjODlhMzBhMmQzNGE5NmQ0NDY1NWRhYjQ2ZjhiYjBkNTRmYjk5YWZkZTA1MGY1$MTIzNDU=",
    ),
    (
        "test",
        "$hmac-sha512$OTFmODY0ZTI1NmU0ZjVhYjhiMDViZGFmNGVmNGZmMGVlNTY4ODYwNWJhYTk4MTk2OTgyMzc3NzI1YTc4MzcxMTMzNzZmY2YxYTk5MGMxM2RiZDk2MGFmMmQ1YzRmODdlMGMwYTNkYjcyNjY0NjM4NGE4YzQ2MjNhZDZkN2UxZTE=$MTIzNDU=",
    ),
];

/// Well-formed hashes that do not match the password (Kratos' negative cases).
const NOT_MATCHING: &[(&str, &str)] = &[
    ("test", "$argon2i$v=19$m=65536,t=3,p=4$pZ+27D6B0bCi0DwSmANF1w$4RNCUu4Uyu7eTIvzIdSuKz+I9idJlX/ykn6J10/W0EU"),
    (
        "test",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXcc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
    ),
    (
        "test",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpII",
    ),
    ("test", "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$cDJvb3ZrZGJ6cQ==$2qU2SGWP8viTM1md3FiI3+rjWXQ="),
    ("test", "$md5$WhBei51A4TKXgNYuoiZdig=="),
    ("test", "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$hh8ZTp1hGPPZQqcr4+UXSQ=="),
    ("test", "$md5-crypt$xWMlm2eL$GGTOpgZu4p2k6ORprAu3b."),
    ("ory", "$sha256-crypt$rounds=535000$T95kH8e37IGVdxzJ$gLeaNa6qRog.bx4Bzqp63ceWItH6nSAal6c3WmT5GHB"),
    (
        "ory",
        "$sha512-crypt$rounds=656000$hNcDLFO63bkYVDZf$Mt9dhH0xqfxWZ6Pu8zXw.Ku5f15IRTweuaDcUc.ObXWGn7B1h8YIWLmArZd8psd2mrUVswCXLAVptmISr.8iI/",
    ),
    // wrong HMAC key
    ("test", "$hmac-md4$MWQ5ZTI4Nzc2Zjg4YmE2MTQ5YjQ0OTMyOGE4NWU4YjA=$MTIzNA=="),
    (
        "test",
        "$hmac-sha256$ZTAzMWJhMWMyOTM4YjFkMjgzZjkxOWExZGY5YWM2NmMxOTJhN2RkNzQ0MzJkNWZkNGFkYTI5OTk0MWJhMTA5Zg==$MTIzNA==",
    ),
    // an empty HMAC key is a key
    ("test", "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$"),
];

/// Known prefix, unusable rest: refused at import, and by `verify_blocking`.
const MALFORMED: &[(&str, &str)] = &[
    ("argon2id", "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ"),
    ("argon2id", "$argon2id$v=16$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw"),
    ("argon2id", "$argon2id$v=19$t=2,m=32,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw"),
    ("argon2id", "$argon2id$v=19$m=32,t=0,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw"),
    ("argon2id", "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$!!!"),
    ("argon2id", "$argon2id$v=19$m=32,t=2,p=4$c2hvcnQ$MNzk5BtR2vUhrp6qQEjRNw"),
    ("argon2id", "$argon2id$v=19$m=4194304,t=1,p=1$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw"),
    ("argon2i", "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$"),
    // Kratos' negative vector: non-zero trailing bits, which strict base64 refuses (Go too).
    ("argon2id", "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRN2"),
    ("bcrypt", "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL"),
    ("bcrypt", "$2a$03$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"),
    ("bcrypt", "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkf!6"),
    ("bcrypt", "$2b$"),
    // Kratos' negative vector: its last character has bits no bcrypt encoder sets.
    ("bcrypt", "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL7"),
    (
        "pbkdf2",
        "$pbkdf2-sha256$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
    ),
    (
        "pbkdf2",
        "$pbkdf2-sha256$aaaa$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
    ),
    (
        "pbkdf2",
        "$pbkdf2-sha512$I=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc",
    ),
    ("pbkdf2", "$pbkdf2-sha256$i=1,l=32$c2FsdA$"),
    // Kratos' negative vector: non-zero trailing bits, refused by strict base64 (Go too).
    (
        "pbkdf2",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpp",
    ),
    ("scrypt", "$scrypt$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE="),
    (
        "scrypt",
        "$scrypt$ln=16384,r=8,p=1$(2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    (
        "scrypt",
        "$scrypt$ln=16385,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    (
        "scrypt",
        "$scrypt$ln=abc,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    (
        "scrypt",
        "$scrypt$ln=1,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    ("scrypt", "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$"),
    // Kratos' negative vector: non-zero trailing bits, refused by strict base64 (Go too).
    (
        "scrypt",
        "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYF=",
    ),
    (
        "scrypt",
        "$scrypt$ln=1073741824,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    (
        "firescrypt",
        "$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSou7FOl6mChCyzpCPIQ7tku7nsQMTFtyOZSXXd7tjBa4NtimOx7v42Gv2SfzPQu1oxM2/k4SsbOu73wlKe1A==$Bw==",
    ),
    ("firescrypt", "$firescrypt$ln=0,r=8,p=1$c2FsdA==$AAAA$Bw==$AAAA"),
    // Kratos' negative vector: non-zero trailing bits, refused by strict base64 (Go too).
    (
        "firescrypt",
        "$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSou7FOl6mChCyzpCPIQ7tku7nsQMTFtyOZSXXd7tjBa4NtimOx7v42Gv2SfzPQu1oxM2/k4SsbOu73wlKe1A==$Bw==$YE0dO4bwD4JnJafh6lZZfkp1MtKzuKAXQcDCJNJNyeCHairWHKENOkbh3dzwaCdizzOspwr/FITUVlnOAwPKyc==",
    ),
    ("firescrypt", "$firescrypt$ln=14,r=8,p=1$c2FsdA==$AAAA$Bw==$AAAAAAAA"),
    ("ssha", "{SSHA}tooshort"),
    ("ssha", "{SSHA}JFZFs0oHzxbMwkSJmYVeI8Mn"),
    ("ssha", "{SSHA256}not base64"),
    ("sha", "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$5opmkgz03r$2qU2SGWP8viTM1md3FiI3+rjWXQ="),
    ("sha", "$sha1$pf=$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ="),
    ("sha", "$sha1$$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ="),
    ("sha", "$sha1$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ="),
    ("sha", "$sha256$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ="),
    ("md5", "$md5$$"),
    ("md5", "$md5$$$"),
    ("md5", "$md5$pf=$$"),
    ("md5", "$md5$pf=MTIz$Z$"),
    ("md5", "$md5$pf=MTIz$MTIz$Z"),
    ("md5", "$md5$"),
    ("md5-crypt", "$md5-crypt$$"),
    ("md5-crypt", "$md5-crypt$$$"),
    ("md5-crypt", "$md5-crypt$whuMjZj.HMFoaTaZRRtkO0"),
    ("md5-crypt", "$md5-crypt$toolongsalt$whuMjZj.HMFoaTaZRRtkO0"),
    ("sha256-crypt", "$sha256-crypt$$"),
    ("sha256-crypt", "$sha256-crypt$$$"),
    ("sha256-crypt", "$sha256-crypt$rounds=999$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    ("sha256-crypt", "$sha256-crypt$rounds=x$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    ("sha512-crypt", "$sha512-crypt$$"),
    ("sha512-crypt", "$sha512-crypt$$$"),
    ("sha512-crypt", "$sha512-crypt$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    ("hmac", "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk="),
    ("hmac", "$hmac-md5$MTIzNDU="),
    ("hmac", "$hmac-md5$$MTIzNDU="),
    ("hmac", "$hmac-md5$"),
    ("hmac", "$hmac-sha1$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU="),
];

/// No known prefix at all.
const UNKNOWN: &[&str] = &[
    "",
    "plaintext",
    "$unknown$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
    "$2x$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
    "$hmac$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU=",
    "$hmac-invalid$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU=",
    "{SSHAnotExistent}xPUl/px+1cG55rUH4rzcwxdOIPSB2TingLpiJJumN2xyDWN4Ix1WQG3ihnvHaWUE8MYNkvMi5rf0C9NYixHsE6Yh59M=",
    "$shaNotExistent$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B1",
    "$pbkdf2-sha$i=1,l=1$AA$AA",
    "$pbkdf2-sha1234$i=1,l=1$AA$AA",
    "$5$rounds=535000$awpcR7lDlnK/S7WE$vHU7KkQwyjfGz6u4MUi7.lH9htK/l63HloTsX1ZMz.3",
    "$1$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C/",
];

/// A different password of the same shape.
fn wrong(password: &str) -> String {
    format!("{password}x")
}

#[test]
fn published_vectors_verify() {
    for (password, encoded) in MATCHING {
        assert_eq!(check_format(encoded), Ok(()), "{encoded}");
        assert_eq!(verify_blocking(password.as_bytes(), encoded), Ok(true), "{encoded}");
        assert_eq!(verify_blocking(wrong(password).as_bytes(), encoded), Ok(false), "{encoded}");
    }
}

#[test]
fn non_matching_vectors_are_well_formed_but_false() {
    for (password, encoded) in NOT_MATCHING {
        assert_eq!(check_format(encoded), Ok(()), "{encoded}");
        assert_eq!(verify_blocking(password.as_bytes(), encoded), Ok(false), "{encoded}");
    }
}

#[test]
fn malformed_hashes_are_refused() {
    for (format, encoded) in MALFORMED {
        match check_format(encoded) {
            Err(HashError::Malformed { format: f, reason }) => {
                assert_eq!(f, *format, "{encoded}: {reason}");
                // Reasons never repeat the hash.
                assert!(encoded.len() < 8 || !reason.contains(&encoded[encoded.len() - 8..]), "{reason}");
            }
            other => panic!("{encoded}: expected malformed {format}, got {other:?}"),
        }
        assert!(matches!(verify_blocking(b"test", encoded), Err(HashError::Malformed { .. })), "{encoded}");
    }
}

#[test]
fn unknown_prefixes_are_refused() {
    for encoded in UNKNOWN {
        assert_eq!(check_format(encoded), Err(HashError::UnknownFormat), "{encoded}");
        assert_eq!(verify_blocking(b"test", encoded), Err(HashError::UnknownFormat), "{encoded}");
    }
}

#[test]
fn base64_padding_is_optional() {
    // Kratos writes pbkdf2/argon2 unpadded and scrypt/sha/md5 padded; both spellings verify.
    let padded = "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc=$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI=";
    assert_eq!(verify_blocking(b"test", padded), Ok(true));
    let unpadded = "$md5$CY9rzUYh03PK3k6DJie09g";
    assert_eq!(verify_blocking(b"test", unpadded), Ok(true));
}

#[test]
fn pbkdf2_names_map_to_kratos_prfs() {
    // sha224/sha384 are SHA3-224/SHA3-384 in Kratos; any other sha<digits> is SHA-256.
    let salt = b"0123456789abcdef";
    for (name, out) in [
        ("sha1", derive::<sha1::Sha1>(salt)),
        ("sha224", derive::<sha3::Sha3_224>(salt)),
        ("sha256", derive::<pbkdf2::sha2::Sha256>(salt)),
        ("sha384", derive::<sha3::Sha3_384>(salt)),
        ("sha512", derive::<pbkdf2::sha2::Sha512>(salt)),
        ("sha3", derive::<pbkdf2::sha2::Sha256>(salt)),
    ] {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let encoded = format!("$pbkdf2-{name}$i=10,l=24${}${}", b64.encode(salt), b64.encode(out));
        assert_eq!(verify_blocking(b"pw", &encoded), Ok(true), "{name}");
        assert_eq!(verify_blocking(b"pW", &encoded), Ok(false), "{name}");
    }

    fn derive<D: hmac::EagerHash>(salt: &[u8]) -> [u8; 24] {
        let mut out = [0u8; 24];
        pbkdf2::pbkdf2_hmac::<D>(b"pw", salt, 10, &mut out);
        out
    }
}

#[test]
fn hmac_hex_case_is_not_significant() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let upper = b64.encode("FE8697F742D080405D1270E6163316F9");
    assert_eq!(verify_blocking(b"test", &format!("$hmac-md5${upper}$MTIzNDU=")), Ok(true));
}

#[test]
fn bcrypt_refuses_passwords_over_72_bytes() {
    // 73 bytes would be truncated to the same 72 and match: Kratos refuses instead.
    let encoded = bcrypt::hash_with_salt([b'a'; 72], 4, [7u8; 16]).unwrap().format_for_version(bcrypt::Version::TwoA);
    assert_eq!(verify_blocking(&[b'a'; 72], &encoded), Ok(true));
    assert_eq!(verify_blocking(&[b'a'; 73], &encoded), Ok(false));
}

fn hashers(algorithm: crate::config::HashAlgorithm) -> HashersConfig {
    let mut c = HashersConfig { algorithm, ..Default::default() };
    c.argon2.memory = crate::config::ByteSize(64 << 10);
    c.argon2.iterations = 2;
    c.argon2.parallelism = 4;
    c.bcrypt.cost = 12;
    c
}

#[test]
fn rehash_when_another_family_or_a_higher_cost() {
    use crate::config::HashAlgorithm;
    let argon = HashPool::new(&hashers(HashAlgorithm::Argon2)).unwrap();
    let bcrypt = HashPool::new(&hashers(HashAlgorithm::Bcrypt)).unwrap();
    let cheap = "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw";
    let more_iterations =
        "$argon2id$v=19$m=32,t=5,p=4$cm94YnRVOW5jZzFzcVE4bQ$fBxypOL0nP/zdPE71JtAV71i487LbX3fJI5PoTN6Lp4";
    assert!(!argon.needs_rehash(cheap));
    assert!(argon.needs_rehash(more_iterations), "t=5 is above the configured t=2");
    assert!(argon.needs_rehash(
        "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c"
    ));
    assert!(bcrypt.needs_rehash(cheap));
    for prefix in ["$2$", "$2a$", "$2b$", "$2y$", "$2z$"] {
        let encoded = format!("{prefix}12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6");
        assert!(!bcrypt.needs_rehash(&encoded), "{prefix}");
        assert!(argon.needs_rehash(&encoded), "{prefix}");
    }
    let costly = bcrypt::hash_with_salt(b"pw", 13, [7u8; 16]).unwrap().format_for_version(bcrypt::Version::TwoA);
    assert!(bcrypt.needs_rehash(&costly), "cost 13 is above the configured 12");
    assert!(bcrypt.needs_rehash("$2x$12$abc"));
    assert!(argon.needs_rehash("$pbkdf2-sha256$i=1,l=1$AA$AA"));
}

#[test]
fn import_limits_default_to_four_times_the_configured_cost() {
    use crate::config::HashAlgorithm;
    let mut config = hashers(HashAlgorithm::Argon2);
    config.argon2.memory = crate::config::ByteSize(256 << 20);
    let limits = ImportLimits::from_config(&config);
    let salt = "cm94YnRVOW5jZzFzcVE4bQ";
    let argon = |m: u32, t: u32, p: u32| format!("$argon2id$v=19$m={m},t={t},p={p}${salt}$MNzk5BtR2vUhrp6qQEjRNw");
    assert_eq!(limits.check(&argon(1 << 20, 2, 32)), Ok(()), "4 x 256 MiB, 4 x max(p, 8), work 4 x 256 MiB x 2");
    assert_eq!(limits.check(&argon(1 << 16, 12, 1)), Ok(()), "4 x max(t, 3)");
    let over = |encoded: &str| match limits.check(encoded) {
        Err(HashError::OverLimit { param, value, limit }) => (param, value, limit),
        other => panic!("{other:?}"),
    };
    assert_eq!(over(&argon((1 << 20) + 1, 1, 1)), (CostParam::Argon2Memory, (1 << 20) + 1, 1 << 20));
    assert_eq!(over(&argon(64, 13, 1)), (CostParam::Argon2Iterations, 13, 12));
    assert_eq!(over(&argon(1 << 20, 3, 1)), (CostParam::Argon2Work, 3 << 20, 2 << 20));
    assert_eq!(over(&argon(512, 1, 33)), (CostParam::Argon2Parallelism, 33, 32));
    let message = limits.check(&argon(64, 13, 1)).unwrap_err().to_string();
    assert!(message.contains("argon2 iterations (t)") && message.contains("hashers.import_limits.argon2_iterations"));
    // bcrypt: cost 14 (4 x 12's work) passes, 15 does not.
    let b = |cost: u32| {
        bcrypt::hash_with_salt(b"pw", 4, [7u8; 16]).unwrap().format_for_version(bcrypt::Version::TwoA).replacen(
            "$04$",
            &format!("${cost:02}$"),
            1,
        )
    };
    assert_eq!(limits.check(&b(14)), Ok(()));
    assert_eq!(over(&b(15)), (CostParam::BcryptCost, 15, 14));
    let pbkdf2 = |i: u32| {
        format!(
            "$pbkdf2-sha256$i={i},l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI"
        )
    };
    assert_eq!(limits.check(&pbkdf2(2_400_000)), Ok(()));
    assert_eq!(over(&pbkdf2(2_400_001)).0, CostParam::Pbkdf2Iterations);
    let scrypt = |n: u32, r: u32, p: u32| {
        format!(
            "$scrypt$ln={n},r={r},p={p}$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE="
        )
    };
    assert_eq!(limits.check(&scrypt(1 << 20, 8, 1)), Ok(()), "1 GiB");
    assert_eq!(over(&scrypt(1 << 19, 17, 1)).0, CostParam::ScryptMemory);
    assert_eq!(over(&scrypt(16384, 8, 17)).0, CostParam::ScryptParallelism);
    let sha_crypt = |rounds: u32| format!("$sha512-crypt$rounds={rounds}$saltstring${}", "a".repeat(86));
    assert_eq!(over(&sha_crypt(1_000_001)), (CostParam::ShaCryptRounds, 1_000_001, 1_000_000));
    // Configured ceilings win; formats without a cost pass.
    config.import_limits.argon2_iterations = Some(2);
    assert_eq!(
        ImportLimits::from_config(&config).check(&argon(64, 3, 1)).unwrap_err(),
        HashError::OverLimit { param: CostParam::Argon2Iterations, value: 3, limit: 2 }
    );
    assert_eq!(limits.check("{SSHA}MjQ1NDc4YzE2MzY2YzQyMGJiOGJlZjRlZGFlOWFiN2YyMjI0YjRjZA=="), Ok(()));
}
