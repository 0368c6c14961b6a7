//! MiniTwit's embedded default store on sled. (Being built: issue 2.)
