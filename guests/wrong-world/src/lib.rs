//! `wrong-world`: a valid component that exports some other world, not
//! `weir:processor/processor`. The host must refuse it with an error naming the
//! file and the world it expected.

wit_bindgen::generate!({
    inline: "
        package test:wrong;
        world wrong {
            export run: func() -> u32;
        }
    ",
});

struct Wrong;

impl Guest for Wrong {
    fn run() -> u32 {
        42
    }
}

export!(Wrong);
